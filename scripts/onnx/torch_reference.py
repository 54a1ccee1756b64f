#!/usr/bin/python3
"""PyTorch reference for the project's U-Net (scripts/onnx/unet.ts): same architecture, same
weights (read from a blob the TS side writes), Seg-Grad-CAM the pytorch-grad-cam way (hooks on
the layer, loss.backward()).

Only used when Debian's python3-torch is installed (tests skip, the bench leaves it out
otherwise). Usage: /usr/bin/python3 scripts/onnx/torch_reference.py DIR MODE
  DIR/spec.json    {"levels", "base", "classes", "inChannels", "height", "width", "params": [{name, dims, offset}]}
  DIR/params.bin   float32 parameters
  DIR/input.bin    float32 NCHW input [1, C, H, W]
  DIR/weights.bin  float32 objective weights over the logits, NCHW [1, classes, H, W]
MODE alpha: prints {"alpha": [...], "score": S} for the bottleneck (α = mean over h, w of ∂S/∂A)
MODE serve: prints {"threads": n, "torch": version}, then for each stdin line "forward" or
  "gradcam" runs it once and prints its time in ms (the bench times it in turns with its own
  calls, so that the machine's drift hits both alike); "quit" or end of input stops.
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.conv1 = nn.Conv2d(a, b, 3, padding=1)
        self.conv2 = nn.Conv2d(b, b, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UNet(nn.Module):
    def __init__(self, levels, base, classes, cin):
        super().__init__()
        self.levels = levels
        c = cin
        for l in range(levels):
            setattr(self, f'enc{l + 1}', Block(c, base * 2 ** l))
            c = base * 2 ** l
        self.bottleneck = Block(c, base * 2 ** levels)
        c = base * 2 ** levels
        for l in reversed(range(levels)):
            o = base * 2 ** l
            setattr(self, f'up{l + 1}', nn.ConvTranspose2d(c, o, 2, stride=2))
            setattr(self, f'dec{l + 1}', Block(2 * o, o))
            c = o
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        skips = []
        for l in range(self.levels):
            x = getattr(self, f'enc{l + 1}')(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for l in reversed(range(self.levels)):
            x = getattr(self, f'dec{l + 1}')(torch.cat([getattr(self, f'up{l + 1}')(x), skips[l]], 1))
        return self.head(x)


def load(d):
    spec = json.load(open(os.path.join(d, 'spec.json')))
    blob = torch.frombuffer(bytearray(open(os.path.join(d, 'params.bin'), 'rb').read()), dtype=torch.float32)
    model = UNet(spec['levels'], spec['base'], spec['classes'], spec['inChannels'])
    state = {}
    for p in spec['params']:
        n = 1
        for s in p['dims']:
            n *= s
        state[p['name']] = blob[p['offset']:p['offset'] + n].reshape(p['dims']).clone()
    model.load_state_dict(state)
    model.eval()
    shape = (1, spec['inChannels'], spec['height'], spec['width'])
    x = torch.frombuffer(bytearray(open(os.path.join(d, 'input.bin'), 'rb').read()), dtype=torch.float32).reshape(shape)
    w = torch.frombuffer(bytearray(open(os.path.join(d, 'weights.bin'), 'rb').read()), dtype=torch.float32)
    w = w.reshape(1, spec['classes'], spec['height'], spec['width'])
    return model, x, w


def gradcam(model, x, w):
    """pytorch-grad-cam's way: forward hook keeps A, a tensor hook keeps ∂S/∂A, loss.backward()."""
    store = {}

    def fwd(_m, _i, out):
        store['a'] = out
        out.register_hook(lambda g: store.__setitem__('g', g))

    h = model.bottleneck.register_forward_hook(fwd)
    model.zero_grad()
    y = model(x)
    loss = (y * w).sum()
    loss.backward()
    h.remove()
    return store['g'].mean((2, 3))[0], loss.item()


def main():
    d, mode = sys.argv[1], sys.argv[2]
    model, x, w = load(d)
    if mode == 'alpha':
        alpha, s = gradcam(model, x, w)
        print(json.dumps({'alpha': alpha.tolist(), 'score': s}))
        return
    if os.environ.get('TORCH_THREADS'):
        torch.set_num_threads(int(os.environ['TORCH_THREADS']))

    def fwd():
        with torch.no_grad():
            model(x)

    calls = {'forward': fwd, 'gradcam': lambda: gradcam(model, x, w)}
    print(json.dumps({'threads': torch.get_num_threads(), 'torch': torch.__version__}), flush=True)
    for line in sys.stdin:
        what = line.strip()
        if what == 'quit':
            break
        t = time.perf_counter()
        calls[what]()
        print((time.perf_counter() - t) * 1000, flush=True)

if __name__ == '__main__':
    main()
