#!/usr/bin/python3
"""A re-implementation of pytorch-grad-cam's natural dataset loop, for bench/batch.ts (not the
package: it is not installable here, and none of its code is copied). Per image: a forward pass
without gradients gives the prediction; then, per class present in it, one Grad-CAM call as
`cam(input, [SemanticSegmentationTarget(c, mask)])` does it: a forward pass with a hook on the
layer that keeps the activation A and its gradient, backward of S = sum over M of the class's
logits (M = the pixels predicted as c), alpha = mean of dS/dA over the map, CAM = ReLU(sum_k
alpha_k A_k), then upsampled to the input (bilinear) and min-max normalised, and saved (.npy).

The model is the ONNX fixture's U-Net (scripts/onnx/export_fixtures.py, `unet(base=4)`) with its
weights read from the .onnx file's initializers by name, so both sides run the same weights.

Usage: /usr/bin/python3 scripts/batch/gradcam_loop.py DIR
  DIR/spec.json   {"onnx": path, "count": N, "height": H, "width": W, "turns": T, "camImages": K}
  DIR/inputs.bin  float32 [N, 3, H, W], the images' pixels / 255 (the model's input range [0, 1])
Prints one JSON line: {"torch", "threads", "seconds": [one per turn], "requests": [[image, class]...],
  "cams": [{"image", "class", "shape": [h, w], "cam": [...]}] for the first K images (raw CAMs)}.
"""
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'onnx'))
from export_fixtures import unet  # noqa: E402  the fixture's architecture (same module layout and names)


def load(path):
    model = unet(base=4)
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise SystemExit(f'the .onnx file lacks {missing}')
    model.load_state_dict({k: weights[k] for k in state})
    return model.eval()


def grad_cam(model, x, cls, mask):
    """One cam(input, targets) call: forward with hooks, backward of sum_M y_c, CAM at the layer."""
    store = {}

    def hook(_m, _i, out):
        store['a'] = out
        out.register_hook(lambda g: store.__setitem__('g', g))

    h = model.bottleneck.register_forward_hook(hook)
    try:
        model.zero_grad()
        y = model(x)
        (y[0, cls] * mask).sum().backward()
    finally:
        h.remove()
    a = store['a'][0].detach()
    alpha = store['g'][0].mean((1, 2))
    return F.relu((alpha[:, None, None] * a).sum(0))


def main():
    d = sys.argv[1]
    spec = json.load(open(os.path.join(d, 'spec.json')))
    n, hh, ww = spec['count'], spec['height'], spec['width']
    inputs = torch.from_numpy(np.fromfile(os.path.join(d, 'inputs.bin'), dtype=np.float32).reshape(n, 3, hh, ww))
    model = load(spec['onnx'])
    out = tempfile.mkdtemp(prefix='gradcam-loop-')
    seconds = []
    requests = []
    cams = []
    for turn in range(spec['turns'] + 1):  # turn 0 warms up and is not counted
        t = time.perf_counter()
        for k in range(n):
            x = inputs[k:k + 1]
            with torch.no_grad():
                labels = model(x).argmax(1)[0]
            for c in torch.unique(labels).tolist():
                mask = (labels == c).float()
                cam = grad_cam(model, x, c, mask)
                up = F.interpolate(cam[None, None], size=(hh, ww), mode='bilinear', align_corners=False)[0, 0]
                lo, hi = up.min(), up.max()
                up = (up - lo) / (hi - lo + 1e-7)
                np.save(os.path.join(out, f'{k}-{c}.npy'), up.numpy())
                if turn == 0:
                    requests.append([k, c])
                    if k < spec['camImages']:
                        cams.append({'image': k, 'class': c, 'shape': list(cam.shape), 'cam': cam.flatten().tolist()})
        if turn > 0:
            seconds.append(time.perf_counter() - t)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    os.rmdir(out)
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'seconds': seconds, 'requests': requests, 'cams': cams}))


if __name__ == '__main__':
    main()
