#!/usr/bin/python3
"""Exports the ONNX fixtures in fixtures/onnx/ with torch.onnx.export.

Run once on a developer machine with Debian's PyTorch (apt-get install python3-torch; no pip,
no download of weights): /usr/bin/python3 scripts/onnx/export_fixtures.py
The .onnx files are committed; CI and the tests never need PyTorch. Weights are random
(torch.manual_seed per model), so the files are small and the script reproduces them.

fixtures/onnx/ops/<name>.onnx  one small graph per supported op (for finite-difference tests),
                               input [1, 3, 8, 10] (non-square on purpose)
fixtures/onnx/unet-small.onnx  the benchmark U-Net architecture at base 4, 32x64 input
fixtures/onnx/manifest.json    per file: opset, ops in the graph, what it exercises
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_reference import Block  # the U-Net's conv block, shared with the PyTorch reference (same directory)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures', 'onnx')
IN = (1, 3, 8, 10)


class Seq(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        for k, v in mods.items():
            setattr(self, k, v)
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


def conv(cin=3, cout=4, k=3, s=1, p=1, **kw):
    return nn.Conv2d(cin, cout, k, stride=s, padding=p, **kw)


def unet(base=4, levels=4, classes=8, cin=3):
    # Modules in lists (not torch_reference.UNet's named ones): the committed fixture's node names and weights come from this layout.
    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.ModuleList()
            c = cin
            for l in range(levels):
                self.enc.append(Block(c, base * 2 ** l))
                c = base * 2 ** l
            self.bottleneck = Block(c, base * 2 ** levels)
            c = base * 2 ** levels
            self.ups = nn.ModuleList()
            self.dec = nn.ModuleList()
            for l in reversed(range(levels)):
                o = base * 2 ** l
                self.ups.append(nn.ConvTranspose2d(c, o, 2, stride=2))
                self.dec.append(Block(2 * o, o))
                c = o
            self.head = nn.Conv2d(c, classes, 1)

        def forward(self, x):
            skips = []
            for b in self.enc:
                x = b(x)
                skips.append(x)
                x = F.max_pool2d(x, 2)
            x = self.bottleneck(x)
            for up, dec, skip in zip(self.ups, self.dec, reversed(skips)):
                x = dec(torch.cat([up(x), skip], 1))
            return self.head(x)

    return UNet()


# name -> (module factory, opset, what it exercises)
CASES = {
    'conv': (lambda: Seq(lambda m, x: m.c(x), c=conv()), 13, 'Conv 3x3 stride 1 (flipped-weight Conv gradient)'),
    'conv_strided': (lambda: Seq(lambda m, x: m.c(x), c=conv(k=3, s=2, p=1)), 11, 'Conv stride 2 (ConvTranspose gradient with output_padding)'),
    'conv_group_dilated': (lambda: Seq(lambda m, x: m.c(m.a(x)), a=conv(3, 4, 1, p=0), c=conv(4, 6, 3, p=2, dilation=2, groups=2)), 13, 'grouped, dilated Conv'),
    'conv_depthwise_strided': (lambda: Seq(lambda m, x: m.c(m.a(x)), a=conv(3, 4, 1, p=0), c=conv(4, 4, 3, s=2, p=1, groups=4)), 12, 'depthwise stride-2 Conv'),
    'conv_transpose': (lambda: Seq(lambda m, x: m.c(x), c=nn.ConvTranspose2d(3, 4, 2, stride=2)), 13, 'ConvTranspose k2 s2'),
    'conv_transpose_padded': (lambda: Seq(lambda m, x: m.c(x), c=nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)), 13, 'ConvTranspose k3 s2 p1 output_padding 1'),
    'relu': (lambda: Seq(lambda m, x: m.d(F.relu(m.c(x))), c=conv(), d=conv(4, 3, 1, p=0)), 13, 'Relu between convs'),
    'leaky_relu': (lambda: Seq(lambda m, x: F.leaky_relu(m.c(x), 0.1), c=conv()), 13, 'LeakyRelu'),
    'clip': (lambda: Seq(lambda m, x: F.relu6(m.c(x) * 4) + F.hardtanh(x, -0.5, 0.25).sum(1, keepdim=True), c=conv()), 11, 'Clip (ReLU6, hardtanh) with min/max inputs'),
    'sigmoid': (lambda: Seq(lambda m, x: m.d(torch.sigmoid(m.c(x))), c=conv(), d=conv(4, 3, 1, p=0)), 13, 'Sigmoid'),
    'hard_sigmoid': (lambda: Seq(lambda m, x: F.hardsigmoid(m.c(x) * 3), c=conv()), 14, 'HardSigmoid'),
    'hard_swish': (lambda: Seq(lambda m, x: F.hardswish(m.c(x) * 4), c=conv()), 14, 'HardSwish'),
    'tanh': (lambda: Seq(lambda m, x: torch.tanh(m.c(x)), c=conv()), 13, 'Tanh'),
    'softmax': (lambda: Seq(lambda m, x: m.d(torch.softmax(m.c(x), 1)), c=conv(), d=conv(4, 3, 1, p=0)), 13, 'Softmax over channels (opset 13)'),
    'reduce': (lambda: Seq(lambda m, x: m.c(x) - m.c(x).mean((2, 3), keepdim=True) + x.sum(1, keepdim=True) * m.c(x).mean(1)[:, None], c=conv()), 13, 'ReduceMean, ReduceSum'),
    'softmax_opset11': (lambda: Seq(lambda m, x: torch.softmax(m.c(x), 1) * m.c(x), c=conv()), 11, 'Softmax over channels at opset 11 (exported with Transpose)'),
    'log_softmax': (lambda: Seq(lambda m, x: torch.log_softmax(m.c(x), 1), c=conv()), 13, 'LogSoftmax'),
    'batch_norm': (lambda: Seq(lambda m, x: m.bn(F.relu(m.c(x))), c=conv(), bn=nn.BatchNorm2d(4)), 13, 'BatchNormalization (inference)'),
    'instance_norm': (lambda: Seq(lambda m, x: m.d(torch.tanh(m.n(m.c(x)))), c=conv(), n=(lambda n: (nn.init.uniform_(n.weight, 0.5, 1.5), nn.init.uniform_(n.bias, -0.2, 0.2), n)[2])(nn.InstanceNorm2d(4, affine=True)), d=conv(4, 3, 1, p=0)), 13, 'InstanceNormalization (affine, statistics over the map; Tanh after it, as a kink would be crossed by every finite difference through the shared statistics)'),
    'max_pool': (lambda: Seq(lambda m, x: m.d(F.max_pool2d(m.c(x), 2)), c=conv(), d=conv(4, 3, 1, p=0)), 13, 'MaxPool 2x2 stride 2'),
    'max_pool_overlap': (lambda: Seq(lambda m, x: F.max_pool2d(m.c(x), 3, stride=2, padding=1), c=conv()), 13, 'MaxPool 3x3 stride 2 (overlapping windows, opset < 16)'),
    'max_pool_overlap16': (lambda: Seq(lambda m, x: F.max_pool2d(m.c(x), 3, stride=2, padding=1), c=conv()), 16, 'MaxPool 3x3 stride 2 (ScatterElements reduction add)'),
    'max_pool_ceil': (lambda: Seq(lambda m, x: F.max_pool2d(m.c(x), 3, stride=2, ceil_mode=True), c=conv()), 13, 'MaxPool ceil_mode'),
    'avg_pool': (lambda: Seq(lambda m, x: F.avg_pool2d(m.c(x), 2), c=conv()), 13, 'AveragePool 2x2'),
    'avg_pool_padded': (lambda: Seq(lambda m, x: F.avg_pool2d(m.c(x), 3, stride=2, padding=1, count_include_pad=False), c=conv()), 13, 'AveragePool 3x3 s2 p1, count_include_pad=0'),
    'avg_pool_ceil': (lambda: Seq(lambda m, x: F.avg_pool2d(m.c(x), 3, stride=2, padding=1, ceil_mode=True), c=conv()), 13, 'AveragePool ceil_mode, count_include_pad=1'),
    'global_avg_pool': (lambda: Seq(lambda m, x: m.c(x) * torch.sigmoid(F.adaptive_avg_pool2d(m.c(x), 1)), c=conv()), 13, 'GlobalAveragePool (squeeze-excitation style), Mul broadcast'),
    'concat': (lambda: Seq(lambda m, x: m.d(torch.cat([m.a(x), x, m.b(x)], 1)), a=conv(3, 2), b=conv(3, 5), d=conv(10, 4)), 13, 'Concat, a tensor with several consumers'),
    'arith': (lambda: Seq(lambda m, x: (m.c(x) * m.s + m.t) / (1.5 + torch.sigmoid(m.c(x))) - x.mean(1, keepdim=True) * 0 - m.c(x) * x[:, :1], c=conv(), s=nn.Parameter(torch.randn(1, 4, 1, 1)), t=nn.Parameter(torch.randn(4, 1, 10))), 13, 'Add/Sub/Mul/Div with broadcasting'),
    'resize_nearest': (lambda: Seq(lambda m, x: F.interpolate(m.c(x), scale_factor=2, mode='nearest'), c=conv()), 13, 'Resize nearest x2'),
    'resize_nearest_opset11': (lambda: Seq(lambda m, x: F.interpolate(m.c(x), size=(13, 17), mode='nearest'), c=conv()), 11, 'Resize nearest to a size'),
    'resize_bilinear': (lambda: Seq(lambda m, x: F.interpolate(m.c(x), scale_factor=2, mode='bilinear', align_corners=False), c=conv()), 13, 'Resize linear, half_pixel'),
    'resize_bilinear_corners': (lambda: Seq(lambda m, x: F.interpolate(m.c(x), size=(11, 23), mode='bilinear', align_corners=True), c=conv()), 11, 'Resize linear, align_corners'),
    'resize_bilinear_down': (lambda: Seq(lambda m, x: F.interpolate(m.c(x), size=(5, 7), mode='bilinear', align_corners=False), c=conv()), 13, 'Resize linear, downsampling'),
    'pad': (lambda: Seq(lambda m, x: F.pad(m.c(x), (1, 2, 0, 3)) + 0.5 * F.pad(m.c(x), (1, 2, 0, 3), mode='reflect') + F.pad(m.c(x), (1, 2, 0, 3), mode='replicate'), c=conv()), 13, 'Pad constant, reflect, edge'),
    'slice': (lambda: Seq(lambda m, x: m.c(x)[:, 1:3, 1:-1, 2:], c=conv()), 13, 'Slice'),
    'transpose_reshape': (lambda: Seq(lambda m, x: m.c(x).permute(0, 2, 3, 1).reshape(1, 8, 10, 2, 2).sum(4).permute(0, 3, 1, 2), c=conv()), 13, 'Transpose, Reshape'),
    'flatten_gemm': (lambda: Seq(lambda m, x: m.l2(F.relu(m.l(torch.flatten(F.relu(m.c(x)), 1)))), c=conv(3, 2, 3, s=2), l=nn.Linear(40, 6), l2=nn.Linear(6, 5)), 13, 'Flatten, Gemm (a classifier: [1, C] output)'),
    'view_shape_arith': (lambda: Seq(lambda m, x: m.l(m.c(x).view(x.size(0), -1)), c=conv(3, 2, 3, s=2), l=nn.Linear(40, 4)), 13, 'Shape/Gather/Unsqueeze/Concat constant-folded, Reshape'),
    'matmul': (lambda: Seq(lambda m, x: torch.matmul(m.c(x), m.w) + torch.matmul(m.v, m.c(x)), c=conv(), w=nn.Parameter(torch.randn(10, 10) * 0.3), v=nn.Parameter(torch.randn(8, 8) * 0.3)), 13, 'MatMul (both operand positions)'),
    'final_softmax': (lambda: Seq(lambda m, x: torch.softmax(m.d(F.relu(m.c(x))), 1), c=conv(), d=conv(4, 5, 1, p=0)), 17, 'a segmentation model ending in Softmax (opset 17): scores are read before it'),
}

# Not exported by PyTorch at these opsets (eval-mode Dropout disappears; Identity is rare):
# Dropout, Identity, Upsample and unsupported-op graphs are written in TS by the tests.


def export(model, path, opset, shape=IN):
    model.eval()
    x = torch.rand(*shape) * 2 - 1
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=opset, input_names=['input'], output_names=['output'], do_constant_folding=True)


def main():
    os.makedirs(os.path.join(ROOT, 'ops'), exist_ok=True)
    manifest = {'torch': torch.__version__, 'input': list(IN), 'ops': {}}
    only = set(sys.argv[1:])
    for i, (name, (factory, opset, what)) in enumerate(sorted(CASES.items())):
        if only and name not in only:
            continue
        torch.manual_seed(1000 + i)
        m = factory()
        path = os.path.join(ROOT, 'ops', f'{name}.onnx')
        export(m, path, opset)
        manifest['ops'][name] = {'opset': opset, 'exercises': what}
        print(f'{name}: opset {opset}, {os.path.getsize(path)} bytes')
    torch.manual_seed(7)
    u = unet(base=4)
    # He initialisation (PyTorch's default shrinks a 19-conv path ~1e-4x: gradients would drown in float32 noise).
    for mod in u.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(mod.weight, nonlinearity='relu')
            nn.init.uniform_(mod.bias, -0.1, 0.1)
    path = os.path.join(ROOT, 'unet-small.onnx')
    export(u, path, 13, (1, 3, 32, 64))
    manifest['unet-small'] = {'opset': 13, 'input': [1, 3, 32, 64], 'base': 4, 'levels': 4, 'classes': 8}
    print(f'unet-small: {os.path.getsize(path)} bytes')
    if not only:
        with open(os.path.join(ROOT, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
