"""The synthetic 3-D volume set and the bundled 3-D model (models/volume-synthetic/).

Volumes (generated from a seed, nothing downloaded): a noisy background with 2-4 objects, each a
sphere (class 1) or a cube (class 2) of random size and position, both filled with the same mean
intensity and the same noise, so shape is what tells them apart. The planted context cue: every
sphere sits on a striped slab (a sinusoidal texture along w, a few voxels thick, directly below
the sphere in d) and cubes never do. The label of a stripe voxel is background. A model that reads
the cue puts Seg-Grad-CAM mass for class 1 on the slab below a sphere.

Training: a small 3-D U-Net (InstanceNorm3d + LeakyReLU, two stride-2 convs, ConvTranspose3d up,
base 4 channels), Adam, cross-entropy, a fixed number of steps on freshly generated 20^3 volumes,
every random draw seeded: the same command re-creates the same model on the same PyTorch build.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/volume/synthetic.py [--steps 1000] [--out models/volume-synthetic]
"""
import argparse
import json
import os
import time

import nibabel as nib
import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, '..', '..', 'models', 'volume-synthetic'))
CLASSES = ['background', 'sphere', 'cube']


def make_volume(rng, shape=(20, 20, 20), objects=(2, 3)):
    """One volume [D, H, W] float32 and its labels [D, H, W] uint8 (see the module note)."""
    d, h, w = shape
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    vol = 0.2 + 0.08 * rng.standard_normal(shape)
    lab = np.zeros(shape, np.uint8)
    for _ in range(rng.integers(objects[0], objects[1] + 1)):
        kind = int(rng.integers(1, 3))
        r = float(rng.uniform(2.5, 4.5))
        c = [float(rng.uniform(r + 1, n - r - 2)) for n in shape]
        if kind == 1:
            inside = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r
            # The cue: a striped slab just below the sphere (larger d), as wide as the sphere.
            slab = (z > c[0] + r) & (z <= c[0] + r + 3) & ((y - c[1]) ** 2 + (x - c[2]) ** 2 <= (r + 1) ** 2)
            stripes = 0.45 + 0.35 * np.sin(2 * np.pi * x / 3.0)
            free = slab & (lab == 0)
            vol[free] = stripes[free] + 0.05 * rng.standard_normal(int(free.sum()))
        else:
            a = r * 0.85
            inside = (np.abs(z - c[0]) <= a) & (np.abs(y - c[1]) <= a) & (np.abs(x - c[2]) <= a)
        vol[inside] = 0.7 + 0.08 * rng.standard_normal(int(inside.sum()))
        lab[inside] = kind
    return vol.astype(np.float32), lab


class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.InstanceNorm3d(cout, affine=True)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class UNet3D(nn.Module):
    def __init__(self, base=4, classes=3):
        super().__init__()
        b = base
        self.enc0 = nn.Sequential(Block(1, b), Block(b, b))
        self.enc1 = nn.Sequential(Block(b, 2 * b, 2), Block(2 * b, 2 * b))
        self.bottleneck = nn.Sequential(Block(2 * b, 4 * b, 2), Block(4 * b, 4 * b))
        self.up1 = nn.ConvTranspose3d(4 * b, 2 * b, 2, stride=2)
        self.dec1 = nn.Sequential(Block(4 * b, 2 * b), Block(2 * b, 2 * b))
        self.up0 = nn.ConvTranspose3d(2 * b, b, 2, stride=2)
        self.dec0 = nn.Sequential(Block(2 * b, b), Block(b, b))
        self.head = nn.Conv3d(b, classes, 1)

    def forward(self, x):
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        bn = self.bottleneck(e1)
        d1 = self.dec1(torch.cat([self.up1(bn), e1], 1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], 1))
        return self.head(d0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seed', type=int, default=14)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = UNet3D()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    weight = torch.tensor([0.2, 1.0, 1.0])  # objects are a few % of the voxels
    losses = []
    t0 = time.time()
    model.train()
    for step in range(args.steps):
        batch = [make_volume(rng) for _ in range(args.batch)]
        x = torch.from_numpy(np.stack([v for v, _ in batch]))[:, None]
        y = torch.from_numpy(np.stack([lab for _, lab in batch]).astype(np.int64))
        loss = nn.functional.cross_entropy(model(x), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if step % 50 == 0 or step == args.steps - 1:
            print(f'step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s', flush=True)
    train_s = time.time() - t0
    model.eval()

    # Held-out evaluation: Dice per class on 16 fresh volumes (another seed stream).
    erng = np.random.default_rng(args.seed + 1000)
    inter = np.zeros(3)
    total = np.zeros(3)
    with torch.no_grad():
        for _ in range(16):
            v, lab = make_volume(erng)
            p = model(torch.from_numpy(v)[None, None]).argmax(1)[0].numpy()
            for c in (1, 2):
                inter[c] += 2 * ((p == c) & (lab == c)).sum()
                total[c] += (p == c).sum() + (lab == c).sum()
    dice = {CLASSES[c]: float(inter[c] / max(total[c], 1)) for c in (1, 2)}

    os.makedirs(args.out, exist_ok=True)
    # The sample: a non-cubic 32 x 40 x 48 volume (D, H, W), one sphere and one cube, as NIfTI-1 with 1 mm voxels.
    srng = np.random.default_rng(args.seed + 2000)
    while True:
        v, lab = make_volume(srng, (32, 40, 48), (2, 2))
        if set(np.unique(lab)) == {0, 1, 2}:
            break
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    for name, arr, dtype in (('sample.nii.gz', v, np.float32), ('sample-label.nii.gz', lab, np.uint8)):
        img = nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)).astype(dtype), aff)
        img.header.set_xyzt_units('mm')
        img.set_sform(aff, code=2)
        img.set_qform(aff, code=1)
        nib.save(img, os.path.join(args.out, name))
    x = torch.from_numpy(v)[None, None]
    path = os.path.join(args.out, 'model.onnx')
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=17, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {2: 'depth', 3: 'height', 4: 'width'}, 'logits': {2: 'depth', 3: 'height', 4: 'width'}},
                          do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    with torch.no_grad():
        pred = model(x).argmax(1)[0].numpy()
    sphere = np.argwhere(lab == 1).mean(0).round().astype(int).tolist()
    cube = np.argwhere(lab == 2).mean(0).round().astype(int).tolist()
    record = {
        'command': f'/usr/bin/python3 scripts/volume/synthetic.py --steps {args.steps} --batch {args.batch} --seed {args.seed} --threads {args.threads}',
        'torch': torch.__version__,
        'steps': args.steps, 'batch': args.batch, 'seed': args.seed, 'optimizer': 'Adam lr 3e-3',
        'loss': 'cross-entropy, class weights 0.2/1/1', 'volume': [20, 20, 20], 'base': 4,
        'parameters': sum(p.numel() for p in model.parameters()),
        'trainSeconds': round(train_s, 1), 'firstLoss': losses[0], 'lastLoss': losses[-1],
        'lossEvery50': losses[::50],
        'heldOutDice': dice, 'heldOutVolumes': 16,
        'classes': CLASSES,
        'sample': {'file': 'sample.nii.gz', 'labels': 'sample-label.nii.gz', 'dims': [32, 40, 48], 'order': 'D, H, W (NIfTI k, j, i)',
                   'sphereCentre': sphere, 'cubeCentre': cube,
                   'sampleDice': {CLASSES[c]: float(2 * ((pred == c) & (lab == c)).sum() / max((pred == c).sum() + (lab == c).sum(), 1)) for c in (1, 2)}},
    }
    with open(os.path.join(args.out, 'training.json'), 'w') as f:
        json.dump(record, f, indent=1)
    print(json.dumps(record, indent=1))


if __name__ == '__main__':
    main()
