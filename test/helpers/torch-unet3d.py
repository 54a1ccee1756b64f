"""PyTorch reference for test/layers-3d.test.ts: the TF.js 3-D U-Net of that test, rebuilt in torch
from its weights (read from a JSON file, TF.js layouts), and autograd's A, dS/dA, alpha and CAM.

Usage: /usr/bin/python3 test/helpers/torch-unet3d.py spec.json > out.json
spec: {input: [D*H*W floats] (C=1), dims: [D, H, W], weights: {name: {shape, values}},
       questions: [{layer, voxels: [[d, h, w], ...], cls}]}   (cls: null = argmax at the first voxel)
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
spec = json.load(open(sys.argv[1]))
W = {k: torch.tensor(v["values"]).reshape(v["shape"]) for k, v in spec["weights"].items()}


def conv(x, name, pad):
    # TF.js Conv3D kernel [kd, kh, kw, in, out] -> torch [out, in, kd, kh, kw]
    return F.conv3d(x, W[name + "/kernel"].permute(4, 3, 0, 1, 2), W[name + "/bias"], padding=pad)


def bn(x, name, eps=1e-3):
    return F.batch_norm(x, W[name + "/moving_mean"], W[name + "/moving_variance"], W[name + "/gamma"], W[name + "/beta"], False, 0.0, eps)


D, H, Wd = spec["dims"]
x = torch.tensor(spec["input"]).reshape(1, 1, D, H, Wd).requires_grad_(True)
acts = {}


def keep(name, t):
    t.retain_grad()
    acts[name] = t
    return t


def forward(x):
    e1 = keep("enc1", F.relu(conv(x, "enc1", 1)))
    p1 = keep("pool1", F.max_pool3d(e1, 2))
    e2 = keep("enc2_act", F.leaky_relu(bn(conv(p1, "enc2", 1), "enc2_bn"), 0.1))
    p2 = keep("pool2", F.avg_pool3d(e2, 2))
    b = keep("bottleneck", F.relu(conv(p2, "bottleneck", 1)))
    u2 = keep("up2", F.interpolate(b, scale_factor=2, mode="nearest"))
    d2 = keep("dec2", F.relu(conv(torch.cat([u2, e2], 1), "dec2", 1)))
    # TF.js Conv3DTranspose kernel [kd, kh, kw, out, in] -> torch ConvTranspose3d [in, out, kd, kh, kw]
    u1 = keep("up1", F.conv_transpose3d(d2, W["up1/kernel"].permute(4, 3, 0, 1, 2), W["up1/bias"], stride=2))
    d1 = keep("dec1", F.relu(conv(torch.cat([u1, e1], 1), "dec1", 1)))
    return conv(d1, "logits", 0)  # the softmax is not part of the logits


out = []
for q in spec["questions"]:
    acts.clear()
    logits = forward(x)
    v0 = q["voxels"][0]
    cls = q["cls"] if q["cls"] is not None else int(logits[0, :, v0[0], v0[1], v0[2]].argmax())
    S = sum(logits[0, cls, d, h, w] for d, h, w in q["voxels"])
    S.backward()
    a = acts[q["layer"]]
    g = a.grad
    alpha = g.mean(dim=(2, 3, 4))[0]
    lin = (alpha.view(1, -1, 1, 1, 1) * a).sum(1)[0]
    out.append(
        {
            "layer": q["layer"],
            "cls": cls,
            "score": float(S),
            "alpha": alpha.tolist(),
            "cam": F.relu(lin).flatten().tolist(),
            "camLinear": lin.flatten().tolist(),
            "shape": list(a.shape),
            "gradients": g.flatten().tolist(),
        }
    )
json.dump({"torch": torch.__version__, "answers": out}, sys.stdout)
