"""bench/volume.ts's PyTorch side: the same 3-D U-Net architecture (scripts/volume/synthetic.py,
seeded random weights: timing does not depend on them) on a SIZE^3 volume with PATCH^3 patches,
overlap 0.5, the MONAI way: a sliding-window loop (nnU-Net's window placement) with Gaussian
importance blending (sigma = patch/8), written here; Seg-Grad-CAM the pytorch-grad-cam way:
forward hooks at the bottleneck, the whole sliding-window forward under autograd, S = sum_M y^c
over the blended logits, one backward (every patch, touched or not). Prints one line per figure.

    /usr/bin/python3 bench/volume_torch.py SIZE PATCH RUNS
"""
import math
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'volume'))
from synthetic import UNet3D  # noqa: E402


def starts(size, patch, overlap=0.5):
    if size == patch:
        return [0]
    n = math.ceil((size - patch) / (patch * (1 - overlap))) + 1
    step = (size - patch) / (n - 1)
    return [round(i * step) for i in range(n)]


def gaussian(patch):
    ax = [torch.exp(-((torch.arange(n, dtype=torch.float32) - (n - 1) / 2) ** 2) / (2 * (n / 8) ** 2)) for n in patch]
    return ax[0][:, None, None] * ax[1][None, :, None] * ax[2][None, None, :]


def sliding(model, x, patch):
    _, _, D, H, W = x.shape
    w = gaussian(patch)
    acc = None
    norm = torch.zeros(D, H, W)
    for d in starts(D, patch[0]):
        for h in starts(H, patch[1]):
            for v in starts(W, patch[2]):
                y = model(x[:, :, d:d + patch[0], h:h + patch[1], v:v + patch[2]])
                if acc is None:
                    acc = torch.zeros(1, y.shape[1], D, H, W)
                acc[:, :, d:d + patch[0], h:h + patch[1], v:v + patch[2]] = acc[:, :, d:d + patch[0], h:h + patch[1], v:v + patch[2]] + y * w
                norm[d:d + patch[0], h:h + patch[1], v:v + patch[2]] += w
    return acc / norm


def main():
    size, patch, runs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    model = UNet3D().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, size, size, size, generator=g)
    p3 = (patch, patch, patch)

    def timed(fn):
        fn()
        xs = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            xs.append((time.perf_counter() - t) * 1000)
        return statistics.median(xs)

    with torch.no_grad():
        fwd = timed(lambda: model(x[:, :, :patch, :patch, :patch]))
        pred = timed(lambda: sliding(model, x, p3))
    print(f'plain forward, one patch: {fwd:.0f} ms (torch {torch.__version__}, {torch.get_num_threads()} threads)')
    print(f'sliding-window prediction: {pred:.0f} ms')
    acts = []
    hook = model.bottleneck.register_forward_hook(lambda m, i, o: acts.append(o))
    c = patch // 4
    masks = {
        'voxel (corner)': (slice(c, c + 1),) * 3,
        'box 8^3 inside one patch': (slice(c - 4, c + 4),) * 3,
        'class region (class 1)': None,
    }
    for name, sl in masks.items():
        def explain():
            acts.clear()
            y = sliding(model, x, p3)
            if sl is None:
                m = (y.argmax(1)[0] == 1).float()
            else:
                m = torch.zeros(size, size, size)
                m[sl] = 1
            s = (y[0, 1] * m).sum()
            grads = torch.autograd.grad(s, acts)
            alpha = torch.stack([gr.mean(dim=(2, 3, 4)) for gr in grads]).mean(0)
            return [torch.relu((alpha[:, :, None, None, None] * a).sum(1)) for a in acts]
        ms = timed(explain)
        print(f'explain {name}: {ms:.0f} ms (every patch forward under autograd + one backward)')
    hook.remove()
    print(f'peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB')


if __name__ == '__main__':
    main()
