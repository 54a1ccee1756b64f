"""PyTorch references for Score-CAM, Ablation-CAM and the input attributions (saliency, gradient x input) on volumes (fixtures/volume/gradient-free.json + .bin),
on the 3-D U-Net of scripts/volume/export.py rebuilt from its seeds (the script checks that its logits equal
the committed reference's, so these are the weights of unet3d.onnx).

Run with Debian's PyTorch:  /usr/bin/python3 scripts/volume/gradient-free-references.py

Definitions (written here from docs/volumes.md, "Score-CAM and Ablation-CAM", in float64):
- S = sum_p sum_u c_p[u] y_p[u] over the patches p touching M, c_p = region x class one-hot x w(u) / W(s_p + u)
  (w: the Gaussian importance map, sigma = patch/8, centred at (n-1)/2; W: the sum of w over every patch
  covering the voxel). One patch: c = region x one-hot.
- Score-CAM 'increase': H_k = min-max over the covered voxels of the blend (over touched patches, weights w)
  of F.interpolate(A_p^k, patch, trilinear, align_corners=False); x_k = b + H_k (x - b), b = min(x);
  alpha_k = S(x_k) - S(b). 'pytorch-grad-cam': align_corners=True, x_k = x H_k, alpha = softmax_k S(x_k).
- Ablation-CAM: S_k = S with channel k of the layer zeroed in every touched patch (a forward hook replaces the
  module's output); w_k = (S - S_k) / S.
- CAM = ReLU(blend over touched patches of sum_k alpha_k A_p^k brought to the patch by nearest upsampling).
- Input attributions from dS/dx by autograd through the blended S: saliency = max_c |dS/dx|,
  gradient x input = ReLU(sum_c x_c dS/dx_c).
"""
import importlib.util
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'zoo'))
from blob import Blob  # noqa: E402

_spec = importlib.util.spec_from_file_location('volume_export', os.path.join(HERE, 'export.py'))
export = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export)

ROOT = export.ROOT
PATCH = export.SHAPE
VOLUME = (20, 28, 30)  # sliding windows: 2 x 2 x 2 patches of 16 x 20 x 24
SLIDING_BOX = [2, 3, 2, 5, 9, 5]  # d0, h0, w0, d1, h1, w1 inclusive: touches 4 patches
LAYERS = {'bottleneck': 'bottleneck.act', 'decoder': 'dec2.act'}


def read_reference(key):
    ref = json.load(open(os.path.join(ROOT, 'reference.json')))
    t = ref['tensors'][key]
    n = int(np.prod(t['shape']))
    arr = np.fromfile(os.path.join(ROOT, 'reference.bin'), dtype='<f4', count=n, offset=t['offset']).reshape(t['shape'])
    return torch.from_numpy(arr.copy()), ref


def rebuild():
    x, ref = read_reference('input')
    torch.manual_seed(export.SEED)
    model = export.UNet3D()
    export.init_weights(model, x)
    logits, _ = read_reference('logits')
    with torch.no_grad():
        err = float((model(x) - logits).abs().max() / logits.abs().max())
    if err > 1e-6:
        raise SystemExit(f'the rebuilt model differs from the reference logits ({err}): not the weights of unet3d.onnx')
    return model.double(), x.double(), ref, err


def starts(size, patch, overlap=0.5):
    if size == patch:
        return [0]
    n = math.ceil((size - patch) / (patch * (1 - overlap))) + 1
    return [round(i * (size - patch) / (n - 1)) for i in range(n)]


def gaussian(patch):
    axes = [torch.exp(-((torch.arange(n, dtype=torch.float64) - (n - 1) / 2) ** 2) / (2 * (n / 8) ** 2)) for n in patch]
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


class Windows:
    """The patches of a volume and the cotangents c_p of S = sum_M y^c over the blended logits."""

    def __init__(self, dims, mask, c):
        self.dims, self.c = dims, c
        self.w = gaussian(PATCH)
        self.all = [(a, b, d) for a in starts(dims[0], PATCH[0]) for b in starts(dims[1], PATCH[1]) for d in starts(dims[2], PATCH[2])]
        total = torch.zeros(dims, dtype=torch.float64)
        for s in self.all:
            total[self.sl(s)] += self.w
        self.touched = [s for s in self.all if mask[self.sl(s)].any()]
        self.cot = [mask[self.sl(s)] * self.w / total[self.sl(s)] for s in self.touched]

    def sl(self, s):
        return tuple(slice(a, a + p) for a, p in zip(s, PATCH))

    def crop(self, vol, s):
        return vol[(slice(None), slice(None)) + self.sl(s)]

    def blend(self, maps):
        """sum_p w m_p / sum_p w over the touched patches; NaN where none covers."""
        num = torch.zeros(self.dims, dtype=torch.float64)
        den = torch.zeros(self.dims, dtype=torch.float64)
        for s, m in zip(self.touched, maps):
            num[self.sl(s)] += self.w * m
            den[self.sl(s)] += self.w
        return num / den, den > 0


def acts_of(model, layer, xs):
    out = []
    h = model.get_submodule(layer).register_forward_hook(lambda m, i, o: out.append(o.detach()))
    with torch.no_grad():
        for x in xs:
            model(x)
    h.remove()
    return out


def score(model, win, vol, replace=None, layer=None):
    """S of the volume; replace: per touched patch, the layer's output to use instead."""
    s = 0.0
    for i, p in enumerate(win.touched):
        h = None
        if replace is not None:
            h = model.get_submodule(layer).register_forward_hook(lambda m, inp, o, r=replace[i]: r)
        with torch.no_grad():
            y = model(win.crop(vol, p))
        if h:
            h.remove()
        s += float((y[0, win.c] * win.cot[i]).sum())
    return s


def score_cam(model, win, vol, acts, variant):
    torch_variant = variant == 'pytorch-grad-cam'
    base = torch.zeros_like(vol) if torch_variant else torch.full_like(vol, float(vol.min()))
    sb = 0.0 if torch_variant else score(model, win, base)
    k = acts[0].shape[1]
    scores = []
    for ch in range(k):
        ups = [F.interpolate(a[:, ch : ch + 1], size=PATCH, mode='trilinear', align_corners=torch_variant)[0, 0] for a in acts]
        m, covered = win.blend(ups)
        lo, hi = m[covered].min(), m[covered].max()
        h = torch.where(covered, (m - lo) / (hi - lo + 1e-8), torch.zeros_like(m))
        scores.append(score(model, win, base + h * (vol - base)) - sb)
    s = torch.tensor(scores, dtype=torch.float64)
    return torch.softmax(s, 0) if torch_variant else s


def ablation_cam(model, win, vol, acts, layer):
    s = score(model, win, vol, acts, layer)
    out = []
    for ch in range(acts[0].shape[1]):
        z = [a.clone() for a in acts]
        for a in z:
            a[:, ch] = 0
        out.append((s - score(model, win, vol, z, layer)) / s)
    return torch.tensor(out, dtype=torch.float64)


def cam_on_volume(win, acts, alpha):
    maps = []
    for a in acts:
        lin = (alpha[:, None, None, None] * a[0]).sum(0)
        f = [p // n for p, n in zip(PATCH, lin.shape)]
        maps.append(lin.repeat_interleave(f[0], 0).repeat_interleave(f[1], 1).repeat_interleave(f[2], 2))
    m, covered = win.blend(maps)
    return torch.where(covered, torch.relu(m), torch.zeros_like(m))


def main():
    model, x, ref, err = rebuild()
    blob = Blob()
    out = {'model': 'unet3d.onnx', 'rebuiltLogitsRelErr': err, 'torch': torch.__version__, 'cases': []}

    def case(name, vol, mask, c, layer_role, methods):
        win = Windows(tuple(vol.shape[2:]), mask, c)
        layer = LAYERS[layer_role]
        acts = acts_of(model, layer, [win.crop(vol, s) for s in win.touched])
        entry = {'name': name, 'layer': layer_role, 'class': c, 'touched': [list(s) for s in win.touched], 'methods': {}}
        for m in methods:
            if m == 'ablation-cam':
                alpha = ablation_cam(model, win, vol, acts, layer)
            else:
                alpha = score_cam(model, win, vol, acts, 'pytorch-grad-cam' if m == 'score-cam-torch' else 'increase')
            blob.add(f'{name}/{m}/alpha', alpha)
            blob.add(f'{name}/{m}/cam', cam_on_volume(win, acts, alpha))
            entry['methods'][m] = True
        # dS/dx of the blended S by autograd (the whole volume as one leaf; the touched patches cut from it).
        v = vol.clone().requires_grad_(True)
        s = sum((model(win.crop(v, p))[0, c] * cot).sum() for p, cot in zip(win.touched, win.cot))
        (g,) = torch.autograd.grad(s, v)
        blob.add(f'{name}/saliency/cam', g[0].abs().amax(0))
        blob.add(f'{name}/gradient-x-input/cam', torch.relu((vol[0] * g[0]).sum(0)))
        blob.add(f'{name}/gradient-x-input/camNegative', torch.relu(-(vol[0] * g[0]).sum(0)))
        entry['score'] = float(s)
        out['cases'].append(entry)
        print(name, layer_role, {m: blob.index[f'{name}/{m}/alpha']['shape'] for m in methods}, file=sys.stderr)

    # One patch: the model's input, the reference's box and voxel, its class.
    d, h, w = PATCH
    b = ref['regions']['box']['box']
    box = torch.zeros(1, d, h, w, dtype=torch.float64)[0]
    box[b[0] : b[3] + 1, b[1] : b[4] + 1, b[2] : b[5] + 1] = 1
    vz, vy, vx = ref['regions']['voxel']['voxel']
    vox = torch.zeros(d, h, w, dtype=torch.float64)
    vox[vz, vy, vx] = 1
    c = ref['class']
    all_methods = ['score-cam', 'score-cam-torch', 'ablation-cam']
    case('patch-box', x, box, c, 'bottleneck', all_methods)
    case('patch-voxel-decoder', x, vox, c, 'decoder', ['score-cam', 'ablation-cam'])

    # Sliding windows: a seeded volume larger than the patch, a box reached by 4 of its 8 patches.
    g = np.random.default_rng(export.SEED + 7)
    vol = torch.from_numpy(g.standard_normal((1, 1) + VOLUME).astype(np.float32) * 0.3 + 0.5)
    blob.add('sliding/volume', vol)
    vol = vol.double()
    sb = SLIDING_BOX
    mask = torch.zeros(VOLUME, dtype=torch.float64)
    mask[sb[0] : sb[3] + 1, sb[1] : sb[4] + 1, sb[2] : sb[5] + 1] = 1
    case('sliding-box', vol, mask, 1, 'bottleneck', ['score-cam', 'ablation-cam'])
    out['sliding'] = {'volume': list(VOLUME), 'box': SLIDING_BOX, 'class': 1}
    out['regions'] = {'box': b, 'voxel': [vz, vy, vx]}
    out['layers'] = {r: next(l['onnx'] for l in ref['layers'] if l['module'] == p) for r, p in LAYERS.items()}
    out['tensors'] = blob.index
    out['tensorNote'] = 'float32 little-endian; alpha [C]; cam [D, H, W] on the volume grid (ReLU of the blended map)'
    blob.write(os.path.join(ROOT, 'gradient-free.bin'))
    with open(os.path.join(ROOT, 'gradient-free.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))


if __name__ == '__main__':
    main()
