"""The 3-D fixtures: a small 3-D U-Net exported to ONNX with PyTorch autograd references, and
synthetic NIfTI volumes written with nibabel (fixtures/volume/, see its SOURCE.md).

Run with Debian's PyTorch (no pip):  /usr/bin/python3 scripts/volume/export.py [--out DIR]

Layout convention (the project's, documented in docs/volumes.md): a NIfTI array indexed
[i, j, k] (i fastest on disk) is the C-order tensor [D, H, W] = [k, j, i]; the model input is
[1, C, D, H, W]. The references follow scripts/zoo's format (reference.json indexes
reference.bin, float32 little-endian), with the grid 3-D: alpha_k = mean over d*h*w of dS/dA^k,
CAM = ReLU(sum_k alpha_k A^k) on [d, h, w].
"""
import argparse
import copy
import json
import os
import sys

import nibabel as nib
import numpy as np
import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'zoo'))
from blob import Blob  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..', 'fixtures', 'volume'))
OPSET = 17
SEED = 3014
SHAPE = (16, 20, 24)  # D, H, W of the model input (non-cubic, so that a swapped axis shows)
CLASSES = 3


class Block(nn.Module):
    def __init__(self, cin, cout, norm, act):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.InstanceNorm3d(cout, affine=True) if norm == 'in' else nn.BatchNorm3d(cout)
        self.act = nn.LeakyReLU(0.01) if act == 'leaky' else nn.ReLU()

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class UNet3D(nn.Module):
    """Two poolings: MaxPool3d, a ConvTranspose3d and a trilinear Upsample (a 5-D Resize) on the
    way up, channel-concatenated skips, InstanceNorm3d + LeakyReLU and BatchNorm3d + ReLU blocks."""

    def __init__(self):
        super().__init__()
        self.enc1 = Block(1, 4, 'in', 'leaky')
        self.pool1 = nn.MaxPool3d(2)
        self.enc2 = Block(4, 8, 'bn', 'relu')
        self.pool2 = nn.MaxPool3d(2)
        self.bottleneck = Block(8, 12, 'in', 'leaky')
        self.up2 = nn.ConvTranspose3d(12, 8, 2, stride=2)
        self.bn_up2 = nn.BatchNorm3d(8)  # after a ConvTranspose: stays a BatchNormalization node
        self.dec2 = Block(16, 8, 'bn', 'relu')
        self.up1 = nn.Upsample(scale_factor=2, mode='trilinear', align_corners=False)
        self.reduce1 = nn.Conv3d(8, 4, 1)
        self.dec1 = Block(8, 4, 'in', 'leaky')
        self.head = nn.Conv3d(4, CLASSES, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottleneck(self.pool2(e2))
        d2 = self.dec2(torch.cat([self.bn_up2(self.up2(b)), e2], 1))
        d1 = self.dec1(torch.cat([self.reduce1(self.up1(d2)), e1], 1))
        return self.head(d1)


# role, module path, why
LAYERS = [
    ('encoder', 'enc1.act', 'first encoder block (full resolution, InstanceNorm3d + LeakyReLU)'),
    ('bottleneck', 'bottleneck.act', 'the bottleneck (1/4 resolution)'),
    ('decoder', 'dec2.act', 'the first decoder block (1/2 resolution; its gradient passes the 5-D linear Resize)'),
]


def synthetic_volume(shape, seed):
    """A smooth blob (two Gaussians) plus seeded noise, float32 in about [0, 1]."""
    g = np.random.default_rng(seed)
    d, h, w = shape
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    v = np.exp(-(((z - 0.4 * d) / 3) ** 2 + ((y - 0.5 * h) / 4) ** 2 + ((x - 0.35 * w) / 5) ** 2))
    v += 0.6 * np.exp(-(((z - 0.7 * d) / 2.5) ** 2 + ((y - 0.3 * h) / 3) ** 2 + ((x - 0.7 * w) / 3) ** 2))
    v += 0.1 * g.standard_normal(shape)
    return v.astype(np.float32)


def affine():
    """A non-trivial voxel-to-world map: anisotropic spacing, a rotation about two axes, an offset."""
    a, b = np.deg2rad(20), np.deg2rad(-10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    m = np.eye(4)
    m[:3, :3] = rz @ rx @ np.diag([0.8, 0.9, 2.5])
    m[:3, 3] = [-12.5, 30.25, -7.0]
    return m


def init_weights(model, x):
    g = torch.Generator().manual_seed(SEED + 1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm3d, nn.InstanceNorm3d)):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
    model.train()
    with torch.no_grad():  # BatchNorm statistics from noisy copies of the input
        for _ in range(4):
            model(x + 0.2 * torch.randn(x.shape, generator=g))
    model.eval()
    for m in model.modules():
        if hasattr(m, 'inplace'):
            m.inplace = False


def hooked(model, x):
    acts, hooks = {}, []
    for role, path, _ in LAYERS:
        hooks.append(model.get_submodule(path).register_forward_hook(lambda m, i, o, role=role: acts.__setitem__(role, o)))
    out = model(x)
    for h in hooks:
        h.remove()
    return out, acts


def seg_grad_cam(logits, acts, c, masks):
    res = {}
    roles = [r for r, _, _ in LAYERS]
    for rname, msk in masks.items():
        s = (logits[0, c] * msk.to(logits.dtype)).sum()
        grads = torch.autograd.grad(s, [acts[r] for r in roles], retain_graph=True)
        res[rname] = {'S': s, 'layers': {}}
        for role, gr in zip(roles, grads):
            alpha = gr.mean(dim=(2, 3, 4))[0]
            lin = (alpha[:, None, None, None] * acts[role][0]).sum(0)
            res[rname]['layers'][role] = (gr, alpha, torch.relu(lin), lin)
    return res


def relerr(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def tensor_names(m):
    """The ONNX tensor each hooked module's output became: torch names nodes by scope, '/enc1/act/LeakyRelu'."""
    names = {}
    for role, path, _ in LAYERS:
        prefix = '/' + path.replace('.', '/') + '/'
        outs = [o for n in m.graph.node if n.name.startswith(prefix) for o in n.output]
        if len(outs) != 1:
            raise RuntimeError(f'{role}: {outs}')
        names[role] = outs[0]
    return names


def write_nifti(folder, vol):
    """The model's input as NIfTI-1 (.nii.gz, int16 with scl_slope/inter, sform and qform) and NIfTI-2 (.nii, float32)."""
    aff = affine()
    arr = np.ascontiguousarray(vol.transpose(2, 1, 0))  # [D, H, W] -> nibabel [i, j, k]
    out = {}
    img1 = nib.Nifti1Image(arr, aff)
    img1.header.set_data_dtype(np.int16)
    img1.header.set_xyzt_units('mm')
    img1.set_qform(aff, code=1)
    img1.set_sform(aff, code=2)
    p1 = os.path.join(folder, 'volume.nii.gz')
    nib.save(img1, p1)
    back = nib.load(p1)
    out['volume.nii.gz'] = {'version': 1, 'datatype': 'int16', 'sclSlope': float(back.dataobj.slope), 'sclInter': float(back.dataobj.inter),
                            'sformCode': 2, 'qformCode': 1}
    stored = np.asarray(back.get_fdata(dtype=np.float32))  # the same numbers as the NIfTI-1 file (its int16 quantisation)
    img2 = nib.Nifti2Image(stored, aff)
    img2.header.set_data_dtype(np.float32)
    img2.set_qform(aff, code=1)
    img2.set_sform(aff, code=1)
    p2 = os.path.join(folder, 'volume-nifti2.nii')
    nib.save(img2, p2)
    out['volume-nifti2.nii'] = {'version': 2, 'datatype': 'float32', 'sformCode': 1, 'qformCode': 1}
    return aff, back, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=ROOT)
    ap.add_argument('--only', choices=['all', 'unet3d', 'nnunet'], default='all',
                    help='which fixtures to write (nnunet: nnunet3d.onnx and its references only)')
    args = ap.parse_args()
    folder = args.out
    os.makedirs(folder, exist_ok=True)
    if args.only in ('all', 'nnunet'):
        export_nnunet(folder)
    if args.only == 'nnunet':
        return

    vol = synthetic_volume(SHAPE, SEED)
    aff, img1, nifti = write_nifti(folder, vol)
    # The model input is the int16-quantised volume as nibabel reads it back (what a reader gives).
    stored = np.asarray(img1.get_fdata(dtype=np.float32)).transpose(2, 1, 0)
    x = torch.from_numpy(np.ascontiguousarray(stored))[None, None]

    torch.manual_seed(SEED)
    model = UNet3D()
    init_weights(model, x)
    path = os.path.join(folder, 'unet3d.onnx')
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=OPSET, input_names=['input'], output_names=['output'], do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    names = tensor_names(m)

    logits, acts = hooked(model, x)
    _, k, d, h, w = logits.shape
    vz, vy, vx = int(0.4 * d), int(0.5 * h), int(0.35 * w)
    c = int(logits[0, :, vz, vy, vx].argmax())
    box = [d // 4, h // 4, w // 4, d // 2, (3 * h) // 4 - 1, (2 * w) // 3]  # d0, h0, w0, d1, h1, w1 inclusive
    masks = {'voxel': torch.zeros(d, h, w), 'box': torch.zeros(d, h, w)}
    masks['voxel'][vz, vy, vx] = 1
    masks['box'][box[0] : box[3] + 1, box[1] : box[4] + 1, box[2] : box[5] + 1] = 1

    blob = Blob()
    blob.add('input', x)
    blob.add('logits', logits)
    for role, _, _ in LAYERS:
        blob.add(f'A/{role}', acts[role])
    res = seg_grad_cam(logits, acts, c, masks)
    m64 = copy.deepcopy(model).double()
    logits64, acts64 = hooked(m64, x.double())
    res64 = seg_grad_cam(logits64, acts64, c, masks)
    floor = {'logits': relerr(logits, logits64), 'alpha': {}, 'cam': {}}
    for rname, r in res.items():
        floor['alpha'][rname], floor['cam'][rname] = {}, {}
        for role, (gr, alpha, cam, lin) in r['layers'].items():
            blob.add(f'dSdA/{role}/{rname}', gr)
            blob.add(f'alpha/{role}/{rname}', alpha)
            blob.add(f'cam/{role}/{rname}', cam)
            blob.add(f'camLinear/{role}/{rname}', lin)
            floor['alpha'][rname][role] = relerr(alpha, res64[rname]['layers'][role][1])
            floor['cam'][rname][role] = relerr(cam, res64[rname]['layers'][role][2])
    blob.write(os.path.join(folder, 'reference.bin'))
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    ref = {
        'model': 'unet3d',
        'file': 'unet3d.onnx',
        'torch': torch.__version__,
        'opset': OPSET,
        'ops': dict(sorted(ops.items())),
        'parameters': sum(p.numel() for p in model.parameters()),
        'input': {'name': 'input', 'shape': list(x.shape), 'volume': 'volume.nii.gz',
                  'how': 'volume.nii.gz as nibabel reads it (int16 data times scl_slope plus scl_inter), [i, j, k] transposed to [D, H, W]'},
        'output': {'name': 'output', 'shape': list(logits.shape), 'note': 'the output is the logits'},
        'class': c,
        'classNote': 'the argmax of the logits at the voxel region',
        'regions': {'voxel': {'voxel': [vz, vy, vx]}, 'box': {'box': box}},
        'regionNote': 'voxel is (d, h, w) of the logits grid; box is d0, h0, w0, d1, h1, w1 with corners included',
        'scores': {rname: float(r['S']) for rname, r in res.items()},
        'float32VsFloat64': floor,
        'layers': [{'role': role, 'onnx': names[role], 'module': path, 'shape': list(acts[role].shape), 'layout': 'NCDHW', 'why': why}
                   for role, path, why in LAYERS],
        'affine': aff.tolist(),
        'nifti': nifti,
        'bin': 'reference.bin',
        'tensors': blob.index,
        'tensorNote': ('float32 little-endian; A and dSdA [1, C, d, h, w]; alpha [C] = mean over d*h*w of dS/dA; cam [d, h, w] = '
                       'ReLU(sum alpha_k A^k), not normalised; camLinear the same before the ReLU'),
    }
    with open(os.path.join(folder, 'reference.json'), 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
    print(json.dumps({k: ref[k] for k in ('ops', 'parameters', 'class', 'regions', 'scores', 'layers', 'float32VsFloat64')}, indent=1))
    export_ops3d(folder)



class Ops3d(nn.Module):
    """The 5-D ops the U-Net does not use, nnU-Net's strided conv among them: Conv3d stride 2,
    AvgPool3d, a nearest Upsample (5-D nearest Resize), ConvTranspose3d with padding."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv3d(2, 4, 3, stride=2, padding=1)
        self.norm = nn.InstanceNorm3d(4, affine=True)
        self.pool = nn.AvgPool3d(2)
        self.up = nn.ConvTranspose3d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv3d(4, 3, 1)

    def forward(self, x):
        y = self.pool(torch.tanh(self.norm(self.down(x))))
        y = self.up(y)
        y = nn.functional.interpolate(y, scale_factor=2, mode='nearest')
        return self.head(torch.tanh(y))


def export_ops3d(folder):
    """ops3d.onnx and its references: input, a seeded cotangent over the logits, dS/dx by autograd."""
    torch.manual_seed(SEED + 7)
    model = Ops3d().eval()
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-0.2, 0.2)
    g = torch.Generator().manual_seed(SEED + 8)
    x = torch.rand(1, 2, 8, 10, 12, generator=g)
    path = os.path.join(folder, 'ops3d.onnx')
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=OPSET, input_names=['input'], output_names=['output'], do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    xg = x.clone().requires_grad_()
    y = model(xg)
    cot = torch.randn(y.shape, generator=g)
    (gx,) = torch.autograd.grad((y * cot).sum(), xg)
    blob = Blob()
    for k, t in (('input', x), ('logits', y), ('cotangent', cot), ('dSdx', gx)):
        blob.add(k, t)
    blob.write(os.path.join(folder, 'ops3d.bin'))
    ops = {}
    for n in onnx.load(path).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    with open(os.path.join(folder, 'ops3d.json'), 'w') as f:
        json.dump({'file': 'ops3d.onnx', 'ops': dict(sorted(ops.items())), 'tensors': blob.index,
                   'note': 'S = sum(cotangent * logits); dSdx by torch.autograd.grad; float32 little-endian'}, f, separators=(',', ':'))
    print('ops3d', ops)


class ConvIN(nn.Module):
    """nnU-Net's conv block: Conv3d (3x3x3, stride 1 or 2) -> InstanceNorm3d (affine) -> LeakyReLU(0.01)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.InstanceNorm3d(cout, affine=True, eps=1e-5)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class NNUNetLike(nn.Module):
    """nnU-Net's PlainConvUNet in small: three stages of two conv blocks, downsampling by the first
    block's stride-2 conv (no pooling), ConvTranspose3d up, concatenated skips, a 1x1x1 head per
    decoder stage (deep supervision). Outputs: the 1/2-resolution head FIRST, then the full-resolution
    one — the opposite of nnU-Net's order, so that a test shows the engine picks by resolution."""

    def __init__(self):
        super().__init__()
        self.enc0a, self.enc0b = ConvIN(1, 4), ConvIN(4, 4)
        self.enc1a, self.enc1b = ConvIN(4, 8, 2), ConvIN(8, 8)
        self.enc2a, self.enc2b = ConvIN(8, 16, 2), ConvIN(16, 16)
        self.up1 = nn.ConvTranspose3d(16, 8, 2, stride=2)
        self.dec1a, self.dec1b = ConvIN(16, 8), ConvIN(8, 8)
        self.seg1 = nn.Conv3d(8, CLASSES, 1)
        self.up0 = nn.ConvTranspose3d(8, 4, 2, stride=2)
        self.dec0a, self.dec0b = ConvIN(8, 4), ConvIN(4, 4)
        self.seg0 = nn.Conv3d(4, CLASSES, 1)

    def forward(self, x):
        e0 = self.enc0b(self.enc0a(x))
        e1 = self.enc1b(self.enc1a(e0))
        b = self.enc2b(self.enc2a(e1))
        d1 = self.dec1b(self.dec1a(torch.cat([self.up1(b), e1], 1)))
        d0 = self.dec0b(self.dec0a(torch.cat([self.up0(d1), e0], 1)))
        return self.seg1(d1), self.seg0(d0)


NN_LAYERS = [
    ('encoder', 'enc0b.act', 'first encoder stage (full resolution)'),
    ('bottleneck', 'enc2b.act', 'the bottleneck (1/4 resolution, reached by two stride-2 convs)'),
    ('decoder', 'dec1b.act', 'the 1/2-resolution decoder stage (feeds the deep-supervision head seg1 and the next stage)'),
]
NN_SHAPE = (16, 16, 16)


def export_nnunet(folder):
    """nnunet3d.onnx (two outputs: ds1 at 1/2 resolution, then seg at full resolution) and
    nnunet3d.json/.bin: PyTorch autograd references of S = sum_M y^c over the full-resolution
    logits at three layers, voxel and box regions; both outputs' logits."""
    torch.manual_seed(SEED + 20)
    model = NNUNetLike()
    g = torch.Generator().manual_seed(SEED + 21)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.InstanceNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
    model.eval()
    x = torch.from_numpy(synthetic_volume(NN_SHAPE, SEED + 22))[None, None]
    path = os.path.join(folder, 'nnunet3d.onnx')
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=OPSET, input_names=['input'], output_names=['ds1', 'seg'],
                          do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    names = {}
    for role, mpath, _ in NN_LAYERS:
        prefix = '/' + mpath.replace('.', '/') + '/'
        outs = [o for n in m.graph.node if n.name.startswith(prefix) for o in n.output]
        if len(outs) != 1:
            raise RuntimeError(f'{role}: {outs}')
        names[role] = outs[0]
    acts, hooks = {}, []
    for role, mpath, _ in NN_LAYERS:
        hooks.append(model.get_submodule(mpath).register_forward_hook(lambda mod, i, o, role=role: acts.__setitem__(role, o)))
    ds1, seg = model(x)
    for h in hooks:
        h.remove()
    _, k, d, h, w = seg.shape
    vz, vy, vx = 6, 8, 5
    c = int(seg[0, :, vz, vy, vx].argmax())
    box = [3, 4, 2, 9, 11, 8]
    masks = {'voxel': torch.zeros(d, h, w), 'box': torch.zeros(d, h, w)}
    masks['voxel'][vz, vy, vx] = 1
    masks['box'][box[0]: box[3] + 1, box[1]: box[4] + 1, box[2]: box[5] + 1] = 1
    blob = Blob()
    blob.add('input', x)
    blob.add('logits', seg)
    blob.add('logits/ds1', ds1)
    roles = [r for r, _, _ in NN_LAYERS]
    for role in roles:
        blob.add(f'A/{role}', acts[role])
    scores = {}
    for rname, msk in masks.items():
        s = (seg[0, c] * msk).sum()
        scores[rname] = float(s)
        grads = torch.autograd.grad(s, [acts[r] for r in roles], retain_graph=True)
        for role, gr in zip(roles, grads):
            alpha = gr.mean(dim=(2, 3, 4))[0]
            lin = (alpha[:, None, None, None] * acts[role][0]).sum(0)
            blob.add(f'dSdA/{role}/{rname}', gr)
            blob.add(f'alpha/{role}/{rname}', alpha)
            blob.add(f'cam/{role}/{rname}', torch.relu(lin))
            blob.add(f'camLinear/{role}/{rname}', lin)
    blob.write(os.path.join(folder, 'nnunet3d.bin'))
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    ref = {
        'model': 'nnunet3d', 'file': 'nnunet3d.onnx', 'torch': torch.__version__, 'opset': OPSET,
        'ops': dict(sorted(ops.items())), 'parameters': sum(p.numel() for p in model.parameters()),
        'input': {'name': 'input', 'shape': list(x.shape)},
        'outputs': [{'name': 'ds1', 'shape': list(ds1.shape), 'note': 'deep supervision, 1/2 resolution (listed first on purpose)'},
                    {'name': 'seg', 'shape': list(seg.shape), 'note': 'the full-resolution logits: the one explained'}],
        'class': c, 'regions': {'voxel': {'voxel': [vz, vy, vx]}, 'box': {'box': box}}, 'scores': scores,
        'layers': [{'role': role, 'onnx': names[role], 'module': mpath, 'shape': list(acts[role].shape), 'why': why}
                   for role, mpath, why in NN_LAYERS],
        'bin': 'nnunet3d.bin', 'tensors': blob.index,
        'tensorNote': 'as reference.json: float32 little-endian, A and dSdA [1, C, d, h, w], alpha = mean over d*h*w; S over the output seg',
    }
    with open(os.path.join(folder, 'nnunet3d.json'), 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
    print(json.dumps({k: ref[k] for k in ('ops', 'parameters', 'class', 'scores', 'layers')}, indent=1))


if __name__ == '__main__':
    main()
