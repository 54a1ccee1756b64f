"""Trains one U-Net of the bias study (issue 15) in PyTorch on tiles rendered by the TS generator.

  /usr/bin/python3 scripts/bias/train.py --train TILES.bin --eval TILES.bin --out DIR
      [--steps 6000] [--base 8] [--depth 3] [--batch 32] [--lr 0.003] [--warmup 200]
      [--seed 1] [--dice 1] [--threads 1]

TILES.bin comes from scripts/bias/dump-tiles.ts (per tile: size*size*3 uint8 RGB, then size*size
uint8 class ids). The network is the project's U-Net (src/unet/build.ts: conv3x3 + BN + ReLU twice
per block, 2x2 max-pool, 2x2 stride-2 transposed conv, concat [skip, up], 1x1 logits; BN epsilon
1e-3 as Keras). Training stops on a step count: Adam, linear warm-up then cosine decay, batches
drawn from the fixed tile set by a seeded generator, cross-entropy + soft Dice. Writes
DIR/torch-weights.bin (float32, little-endian, in TF.js layout and in the order of DIR/torch-weights.json)
and DIR/torch-run.json (options, losses, held-out IoU); scripts/bias/import-torch.ts turns them
into a TF.js LayersModel and checks its predictions against PyTorch's.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 11


def load_tiles(path):
    meta = json.load(open(path + '.json'))
    size = meta['options']['size']
    n = size * size
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, n * 4)
    x = raw[:, : n * 3].reshape(-1, size, size, 3).transpose(0, 3, 1, 2).copy()
    y = raw[:, n * 3 :].reshape(-1, size, size).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y), meta


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class Unet(nn.Module):
    def __init__(self, base=8, depth=3, channels=3, classes=CLASSES):
        super().__init__()
        self.depth = depth
        self.enc = nn.ModuleList()
        cin = channels
        for i in range(1, depth + 1):
            self.enc.append(Block(cin, base * 2 ** (i - 1)))
            cin = base * 2 ** (i - 1)
        self.bottleneck = Block(cin, base * 2 ** depth)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = base * 2 ** depth
        for i in range(depth, 0, -1):
            f = base * 2 ** (i - 1)
            self.up.append(nn.ConvTranspose2d(cin, f, 2, stride=2))
            self.dec.append(Block(2 * f, f))
            cin = f
        self.logits = nn.Conv2d(cin, classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not self.logits:
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')

    def forward(self, x):
        skips = []
        for b in self.enc:
            x = b(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([skip, up(x)], 1))
        return self.logits(x)


def tfjs_weights(model):
    """(layer name, [arrays in TF.js order]) for every layer with weights, names as src/unet/build.ts."""
    out = []

    def conv(name, c):
        out.append((name, [c.weight.detach().numpy().transpose(2, 3, 1, 0)] + ([c.bias.detach().numpy()] if c.bias is not None else [])))

    def bn(name, b):
        out.append((name, [t.detach().numpy() for t in (b.weight, b.bias, b.running_mean, b.running_var)]))

    def block(prefix, b):
        conv(prefix + '_conv1', b.conv1)
        bn(prefix + '_bn1', b.bn1)
        conv(prefix + '_conv2', b.conv2)
        bn(prefix + '_bn2', b.bn2)

    d = model.depth
    for i, b in enumerate(model.enc, 1):
        block(f'enc{i}', b)
    block('bottleneck', model.bottleneck)
    for k, (up, dec) in enumerate(zip(model.up, model.dec)):
        i = d - k
        # ConvTranspose2d weight [in, out, kh, kw] -> TF.js conv2dTranspose kernel [kh, kw, out, in]
        out.append((f'up{i}', [up.weight.detach().numpy().transpose(2, 3, 1, 0), up.bias.detach().numpy()]))
        block(f'dec{i}', dec)
    conv('logits', model.logits)
    return out


def iou_per_class(pred, y):
    ious = []
    for c in range(CLASSES):
        p, t = pred == c, y == c
        union = (p | t).sum().item()
        ious.append((p & t).sum().item() / union if union else float('nan'))
    return ious


def evaluate(model, x, y):
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            preds.append(model(x[i : i + 256].float() / 255).argmax(1))
    model.train()
    pred = torch.cat(preds)
    ious = iou_per_class(pred, y)
    valid = [v for v in ious if not math.isnan(v)]
    return {'meanIou': sum(valid) / len(valid), 'perClassIou': ious, 'pixelAccuracy': (pred == y).float().mean().item()}, pred


def weighted_ce(logits, labels, objects, w):
    """Cross-entropy with each pixel weighted by w[class of the object under it] (objects = labels
    gives PyTorch's class-weighted mean); unweighted when w is None."""
    if w is None:
        return F.cross_entropy(logits, labels)
    wpix = w[objects]
    return (wpix * F.cross_entropy(logits, labels, reduction='none')).sum() / wpix.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--train', required=True)
    ap.add_argument('--eval', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=6000)
    ap.add_argument('--base', type=int, default=8)
    ap.add_argument('--depth', type=int, default=3)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=0.003)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--min-lr-factor', type=float, default=0.02)
    ap.add_argument('--dice', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--class-weight-power', type=float, default=0.0)
    ap.add_argument(
        '--weight-by-object',
        default=None,
        help='TILES.obj from dump-tiles --objects: weight each pixel by the class of the object under it (the digit, whatever its label), class frequencies from the objects',
    )
    ap.add_argument('--val', type=int, default=0, help='last VAL training tiles held back to calibrate the logits bias')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    x, y, meta = load_tiles(a.train)
    ex, ey, emeta = load_tiles(a.eval)
    # the class whose weight a pixel's loss takes: its label, or (--weight-by-object) the object under it,
    # so that the control arm's bias digits labelled background weigh as much as those labelled 3
    obj = y
    if a.weight_by_object:
        obj = torch.from_numpy(np.fromfile(a.weight_by_object, dtype=np.uint8).reshape(y.shape).astype(np.int64))
    if a.val:
        vx, vy, x, y, obj = x[-a.val :], y[-a.val :], x[: -a.val], y[: -a.val], obj[: -a.val]
    freq = torch.bincount(obj.flatten(), minlength=CLASSES).double()
    freq = freq / freq.sum()
    w = freq.clamp_min(1e-6) ** -a.class_weight_power
    w = (w / (freq * w).sum()).float()
    model = Unet(a.base, a.depth)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (0.1 + 0.9 * step / a.warmup)
        t = min(1.0, max(0.0, (step - a.warmup) / max(1, a.steps - a.warmup)))
        lo = a.lr * a.min_lr_factor
        return lo + (a.lr - lo) * 0.5 * (1 + math.cos(math.pi * t))

    t0 = time.time()
    losses = []
    for step in range(a.steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        idx = torch.randint(0, len(x), (a.batch,), generator=gen)
        xb = x[idx].float() / 255
        yb = y[idx]
        logits = model(xb)
        loss = weighted_ce(logits, yb, obj[idx], w if a.class_weight_power else None)
        if a.dice > 0:
            p = logits.softmax(1)
            oh = F.one_hot(yb, CLASSES).permute(0, 3, 1, 2).float()
            inter = (p * oh).sum((0, 2, 3))
            den = p.sum((0, 2, 3)) + oh.sum((0, 2, 3))
            loss = loss + a.dice * (1 - ((2 * inter + 1) / (den + 1)).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 500 == 0:
            print(f'step {step + 1} loss {np.mean(losses[-500:]):.4f} {time.time() - t0:.0f}s', flush=True)
    train_seconds = time.time() - t0
    calibration = None
    if a.class_weight_power and a.val:
        # undo the class weights' prior shift: logits bias -= alpha * log w_c, alpha chosen on the held-back tiles
        b0 = model.logits.bias.detach().clone()
        scores = []
        for alpha in [0, 0.25, 0.5, 0.75, 1.0]:
            with torch.no_grad():
                model.logits.bias.copy_(b0 - alpha * w.log())
            scores.append((evaluate(model, vx, vy)[0]['meanIou'], alpha))
        best = max(scores)[1]
        with torch.no_grad():
            model.logits.bias.copy_(b0 - best * w.log())
        calibration = {'alpha': best, 'valMeanIouByAlpha': [[al, v] for v, al in scores], 'valTiles': a.val}
    metrics, pred = evaluate(model, ex, ey)
    print(json.dumps({'meanIou': metrics['meanIou'], 'iou3': metrics['perClassIou'][4]}), flush=True)
    os.makedirs(a.out, exist_ok=True)
    layers = tfjs_weights(model)
    with open(os.path.join(a.out, 'torch-weights.bin'), 'wb') as f:
        for _, arrays in layers:
            for arr in arrays:
                f.write(np.ascontiguousarray(arr, dtype='<f4').tobytes())
    json.dump([{'name': n, 'shapes': [list(arr.shape) for arr in arrays]} for n, arrays in layers], open(os.path.join(a.out, 'torch-weights.json'), 'w'))
    # PyTorch's own predictions on the first 50 held-out tiles, for the cross-engine check
    pred[:50].numpy().astype(np.uint8).tofile(os.path.join(a.out, 'torch-pred.bin'))
    run = {
        'options': vars(a),
        'trainTiles': {'count': len(x), **meta},
        'evalTiles': {'count': len(ex), **emeta},
        'torch': torch.__version__,
        'params': sum(p.numel() for p in model.parameters()),
        'trainSeconds': train_seconds,
        'stepsPerSecond': a.steps / train_seconds,
        'losses': [float(np.mean(losses[i : i + 100])) for i in range(0, len(losses), 100)],
        'finalMetrics': metrics,
        'classWeights': w.tolist(),
        'calibration': calibration,
    }
    json.dump(run, open(os.path.join(a.out, 'torch-run.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
