"""The zoo's architectures and the three layers explained in each (read by export.py).

torchvision's FCN-ResNet50, DeepLabV3-MobileNetV3-Large and LRASPP-MobileNetV3-Large are used as
they are (weights=None, weights_backbone=None: random weights, nothing is downloaded); the other
three are written here from their papers' descriptions, at small widths:

- SegFormerLike: SegFormer-B0's layout (Xie et al. 2021) at half width: overlapping patch
  embeddings (Conv k7 s4, then k3 s2), efficient self-attention (keys and values from a map
  reduced by a strided Conv, ratio 8/4/2/1), Mix-FFN (Linear, depthwise 3x3 Conv, GELU, Linear),
  LayerNorm, and the all-MLP decoder (per-stage Linear, bilinear upsampling to 1/4, concat,
  1x1 Conv+BN+ReLU fuse, 1x1 classifier). Its logits are at 1/4 of the input, as Hugging Face's
  SegformerForSemanticSegmentation returns them.
- U2NetLike: U²-Net (Qin et al. 2020) / U2NETP layout: six stages of RSU blocks (RSU-7…RSU-4, then
  dilated RSU-4F twice), ceil-mode max pooling, bilinear upsampling to the skip's size, six side
  outputs fused by a 1x1 Conv, a final Sigmoid; one output (the fused map), widths mid 8 / out 32.
- NnUNetLike: nnU-Net's PlainConvUNet (Isensee et al. 2021) in 2-D: per stage two Conv3x3 +
  InstanceNorm(affine) + LeakyReLU(0.01), the first conv of each stage strided (2) except stage 0,
  ConvTranspose k2 s2 decoder with concatenated skips, a 1x1 segmentation head (logits, no softmax).

Each entry of MODELS: build() -> module, the input size, and the three layers as
(role, module path, 'out' | 'in', why) — 'in' hooks the input of that module, for a tensor made by
a functional op (LRASPP's upsampled gated features).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- SegFormer-B0-like
class OverlapPatchEmbed(nn.Module):
    def __init__(self, cin, dim, k, s):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, k, stride=s, padding=k // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # [B, N, C], n = i * w + j
        return self.norm(x), h, w


class EfficientSelfAttention(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, h, w):
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            m = x.transpose(1, 2).reshape(b, c, h, w)
            m = self.sr(m).flatten(2).transpose(1, 2)
            m = self.norm(m)
        else:
            m = x
        kv = self.kv(m).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class MixFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, h, w):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, sr, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x, h, w):
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class Stage(nn.Module):
    def __init__(self, cin, dim, k, s, heads, sr, depth):
        super().__init__()
        self.embed = OverlapPatchEmbed(cin, dim, k, s)
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads, sr) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.to_map = TokensToMap()

    def forward(self, x):
        x, h, w = self.embed(x)
        for blk in self.blocks:
            x = blk(x, h, w)
        return self.to_map(self.norm(x), h, w)


class TokensToMap(nn.Module):
    """[B, N, C] -> [B, C, h, w] (Hugging Face's reshape(b, h, w, -1).permute(0, 3, 1, 2))."""

    def forward(self, x, h, w):
        return x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous()


class MLPDecoder(nn.Module):
    def __init__(self, dims, dec, classes):
        super().__init__()
        self.linear_c = nn.ModuleList([nn.Linear(d, dec) for d in dims])
        self.linear_fuse = nn.Sequential(nn.Conv2d(4 * dec, dec, 1, bias=False), nn.BatchNorm2d(dec), nn.ReLU())
        self.classifier = nn.Conv2d(dec, classes, 1)

    def forward(self, feats):
        size = feats[0].shape[2:]
        outs = []
        for f, lin in zip(feats, self.linear_c):
            b, c, h, w = f.shape
            t = lin(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
            outs.append(F.interpolate(t, size=size, mode='bilinear', align_corners=False))
        x = self.linear_fuse(torch.cat(outs[::-1], 1))
        return self.classifier(x)


class SegFormerLike(nn.Module):
    def __init__(self, dims=(16, 32, 80, 128), heads=(1, 2, 5, 8), srs=(8, 4, 2, 1), depths=(2, 2, 2, 2), dec=128, classes=19):
        super().__init__()
        cins = (3,) + tuple(dims[:-1])
        ks, ss = (7, 3, 3, 3), (4, 2, 2, 2)
        self.stages = nn.ModuleList([Stage(cins[i], dims[i], ks[i], ss[i], heads[i], srs[i], depths[i]) for i in range(4)])
        self.decode_head = MLPDecoder(dims, dec, classes)

    def forward(self, x):
        feats = []
        for st in self.stages:
            x = st(x)
            feats.append(x)
        return self.decode_head(feats)


# ---------------------------------------------------------------- U²-Net-like
class REBNCONV(nn.Module):
    def __init__(self, cin, cout, d=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=d, dilation=d)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def up_to(x, ref):
    return F.interpolate(x, size=ref.shape[2:], mode='bilinear', align_corners=False)


class RSU(nn.Module):
    """RSU-L: L-1 encoder convs with ceil-mode 2x2 pooling between them, a dilated conv at the
    bottom, a decoder of convs on [upsampled, skip], and a residual to the input conv."""

    def __init__(self, depth, cin, mid, cout):
        super().__init__()
        self.depth = depth
        self.inconv = REBNCONV(cin, cout)
        self.enc = nn.ModuleList([REBNCONV(cout if i == 0 else mid, mid) for i in range(depth - 1)])
        self.bottom = REBNCONV(mid, mid, d=2)
        self.dec = nn.ModuleList([REBNCONV(2 * mid, cout if i == depth - 2 else mid) for i in range(depth - 1)])

    def forward(self, x):
        hin = self.inconv(x)
        skips = []
        h = hin
        for i, conv in enumerate(self.enc):
            if i > 0:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for i, conv in enumerate(self.dec):
            s = skips[-1 - i]
            if i > 0:
                h = up_to(h, s)
            h = conv(torch.cat([h, s], 1))
        return h + hin


class RSUF(nn.Module):
    """RSU-4F: dilations 1, 2, 4, 8 instead of pooling (the resolution stays)."""

    def __init__(self, cin, mid, cout):
        super().__init__()
        self.inconv = REBNCONV(cin, cout)
        self.enc = nn.ModuleList([REBNCONV(cout, mid, 1), REBNCONV(mid, mid, 2), REBNCONV(mid, mid, 4)])
        self.bottom = REBNCONV(mid, mid, 8)
        self.dec = nn.ModuleList([REBNCONV(2 * mid, mid, 4), REBNCONV(2 * mid, mid, 2), REBNCONV(2 * mid, cout, 1)])

    def forward(self, x):
        hin = self.inconv(x)
        skips = []
        h = hin
        for conv in self.enc:
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for i, conv in enumerate(self.dec):
            h = conv(torch.cat([h, skips[-1 - i]], 1))
        return h + hin


class U2NetLike(nn.Module):
    def __init__(self, mid=8, out=32):
        super().__init__()
        self.stage1 = RSU(7, 3, mid, out)
        self.stage2 = RSU(6, out, mid, out)
        self.stage3 = RSU(5, out, mid, out)
        self.stage4 = RSU(4, out, mid, out)
        self.stage5 = RSUF(out, mid, out)
        self.stage6 = RSUF(out, mid, out)
        self.stage5d = RSUF(2 * out, mid, out)
        self.stage4d = RSU(4, 2 * out, mid, out)
        self.stage3d = RSU(5, 2 * out, mid, out)
        self.stage2d = RSU(6, 2 * out, mid, out)
        self.stage1d = RSU(7, 2 * out, mid, out)
        self.side = nn.ModuleList([nn.Conv2d(out, 1, 3, padding=1) for _ in range(6)])
        self.outconv = nn.Conv2d(6, 1, 1)
        self.act = nn.Sigmoid()

    def forward(self, x):
        pool = lambda t: F.max_pool2d(t, 2, stride=2, ceil_mode=True)  # noqa: E731
        h1 = self.stage1(x)
        h2 = self.stage2(pool(h1))
        h3 = self.stage3(pool(h2))
        h4 = self.stage4(pool(h3))
        h5 = self.stage5(pool(h4))
        h6 = self.stage6(pool(h5))
        d5 = self.stage5d(torch.cat([up_to(h6, h5), h5], 1))
        d4 = self.stage4d(torch.cat([up_to(d5, h4), h4], 1))
        d3 = self.stage3d(torch.cat([up_to(d4, h3), h3], 1))
        d2 = self.stage2d(torch.cat([up_to(d3, h2), h2], 1))
        d1 = self.stage1d(torch.cat([up_to(d2, h1), h1], 1))
        sides = [self.side[0](d1)] + [up_to(s(t), x) for s, t in zip(self.side[1:], (d2, d3, d4, d5, h6))]
        return self.act(self.outconv(torch.cat(sides, 1)))


# ---------------------------------------------------------------- nnU-Net-like
class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.InstanceNorm2d(cout, eps=1e-5, affine=True)
        self.nonlin = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.nonlin(self.norm(self.conv(x)))


class PlainStage(nn.Sequential):
    def __init__(self, cin, cout, stride):
        super().__init__(ConvNormAct(cin, cout, stride), ConvNormAct(cout, cout))


class NnUNetLike(nn.Module):
    def __init__(self, features=(8, 16, 32, 64, 64), classes=4):
        super().__init__()
        cin = 3
        self.encoder = nn.ModuleList()
        for i, f in enumerate(features):
            self.encoder.append(PlainStage(cin, f, 1 if i == 0 else 2))
            cin = f
        self.transpconvs = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for f_below, f in zip(features[:0:-1], features[-2::-1]):
            self.transpconvs.append(nn.ConvTranspose2d(f_below, f, 2, stride=2))
            self.decoder.append(PlainStage(2 * f, f, 1))
        self.seg = nn.Conv2d(features[0], classes, 1)

    def forward(self, x):
        skips = []
        for st in self.encoder:
            x = st(x)
            skips.append(x)
        x = skips[-1]
        for up, st, skip in zip(self.transpconvs, self.decoder, skips[-2::-1]):
            x = st(torch.cat([up(x), skip], 1))
        return self.seg(x)


# ---------------------------------------------------------------- torchvision
class OutOnly(nn.Module):
    """torchvision's segmentation models return {'out': …}; ONNX wants one tensor."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)['out']


def fcn_resnet50():
    from torchvision.models.segmentation import fcn_resnet50 as f

    return OutOnly(f(weights=None, weights_backbone=None, num_classes=21, aux_loss=False))


def deeplabv3_mobilenet_v3_large():
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large as f

    return OutOnly(f(weights=None, weights_backbone=None, num_classes=21, aux_loss=False))


def lraspp_mobilenet_v3_large():
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large as f

    return OutOnly(f(weights=None, weights_backbone=None, num_classes=21))


# name -> spec. 'commit': small enough to commit; otherwise written under generated/.
# 'final': the module whose input is the logits when the model ends in an activation.
MODELS = {
    'fcn-resnet50': dict(
        build=fcn_resnet50, size=(96, 96), commit=False, source='torchvision',
        layers=[
            ('encoder', 'm.backbone.layer2', 'out', 'last ResNet stage with a stride-2 conv (512 ch, 1/8); layer3 and layer4 are dilated and stay at 1/8'),
            ('bottleneck', 'm.backbone.layer4', 'out', 'the backbone output (2048 ch, 1/8) the FCN head starts from; no smaller map exists (dilated ResNet), so the head input is the bottleneck'),
            ('decoder', 'm.classifier.2', 'out', "FCNHead's ReLU after its 3x3 conv (512 ch, 1/8): the last map before the 1x1 classifier"),
        ]),
    'deeplabv3-mobilenetv3': dict(
        build=deeplabv3_mobilenet_v3_large, size=(96, 96), commit=False, source='torchvision',
        layers=[
            ('encoder', 'm.backbone.4', 'out', 'MobileNetV3 block C2 (40 ch, 1/8): the "aux" feature torchvision taps at output stride 8'),
            ('bottleneck', 'm.backbone.16', 'out', 'the backbone output (960 ch, 1/16, dilated) that ASPP reads; smallest map apart from the ASPP pooling branch (1x1)'),
            ('decoder', 'm.classifier.3', 'out', "DeepLabHead's ReLU after the 3x3 conv on the ASPP projection (256 ch, 1/16): the last map before the classifier"),
        ]),
    'lraspp-mobilenetv3': dict(
        build=lraspp_mobilenet_v3_large, size=(96, 96), commit=False, source='torchvision',
        layers=[
            ('encoder', 'm.backbone.4', 'out', "the 'low' feature (block C2, 40 ch, 1/8) LRASPP's low classifier reads"),
            ('bottleneck', 'm.backbone.16', 'out', "the 'high' feature (block C5, 960 ch, 1/16) the LR-ASPP head starts from"),
            ('decoder', 'm.classifier.high_classifier', 'in', 'the gated head features (cbr(high) × sigmoid scale) upsampled to 1/8 (128 ch), the input of the high classifier: a Resize output'),
        ]),
    'segformer-b0-like': dict(
        build=lambda: SegFormerLike(), size=(96, 96), commit=True, source='ours',
        layers=[
            ('encoder', 'stages.1.blocks.1', 'out', 'stage 2\'s last transformer block (tokens [1, 144, 32] = a 12x12 grid at 1/8): the token layer pytorch-grad-cam users hook with a reshape_transform'),
            ('bottleneck', 'stages.3.to_map', 'out', 'the last encoder stage reshaped to a map (128 ch, 1/32): the deepest, smallest feature the decoder starts from'),
            ('decoder', 'decode_head.linear_fuse', 'out', 'the fused all-MLP decoder features (1x1 Conv+BN+ReLU, 128 ch, 1/4): the last map before the classifier'),
        ]),
    'u2net-like': dict(
        build=lambda: U2NetLike(), size=(64, 64), commit=True, source='ours', final='act',
        layers=[
            ('encoder', 'stage3', 'out', 'encoder stage 3 (RSU-5, 32 ch, 1/4)'),
            ('bottleneck', 'stage6', 'out', 'encoder stage 6 (RSU-4F, 32 ch, 1/32): the last encoder output at the smallest resolution, where the decoder starts (the inner maps of RSU blocks are smaller still but are not stage outputs)'),
            ('decoder', 'stage1d', 'out', 'the last decoder stage (RSU-7, 32 ch, full resolution), read by side output 1'),
        ]),
    'nnunet-like': dict(
        build=lambda: NnUNetLike(), size=(64, 96), commit=True, source='ours',
        layers=[
            ('encoder', 'encoder.1', 'out', 'encoder stage 1 (16 ch, 1/2)'),
            ('bottleneck', 'encoder.4', 'out', 'the last encoder stage (64 ch, 1/16): the smallest map, where the decoder starts'),
            ('decoder', 'decoder.3', 'out', 'the last decoder stage (8 ch, full resolution) before the 1x1 segmentation head'),
        ]),
}


def init_weights(model, seed, calib):
    """Deterministic random weights (the modules' own initialisers under torch.manual_seed), then
    norm affine parameters drawn from U(0.5, 1.5) / U(-0.2, 0.2) and BatchNorm running statistics
    measured on `calib` (a train-mode pass, cumulative averages), so eval-mode BN is neither the
    identity nor an exploding scale."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.LayerNorm)) and getattr(m, 'weight', None) is not None:
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(calib)
    return model.eval()
