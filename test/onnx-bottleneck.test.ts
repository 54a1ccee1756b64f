/**
 * The automatic layer (src/engine/bottleneck.ts): the encoder's last output at the smallest
 * resolution, where the decoder starts. Each model names the layer chosen by reading its
 * architecture (why, in the comment beside it).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { findBottleneck, type LayerLink } from '../src/engine/bottleneck.js';
import type { LayerInfo } from '../src/engine/contract.js';
import { openModelSource } from '../src/engine/open-node.js';
import { Explainer } from '../src/explain.js';
import { useCpu } from './helpers/setup.js';

before(useCpu);

const layer = (name: string, h: number, c: number, type = 'Conv'): LayerInfo => ({ name, type, outputShape: [1, h, h, c] });

describe('findBottleneck on hand-made layer lists', () => {
  test('never a 1-channel side output, never a Cast, never a 1x1 map while larger ones exist', () => {
    const layers = [layer('enc', 4, 8), layer('stage', 2, 32), layer('se', 1, 32), layer('side', 2, 1), layer('cast', 2, 32, 'Cast')];
    assert.equal(findBottleneck(layers).name, 'stage');
  });

  test('with the layer graph: the largest group at the smallest size, back through position-wise projections', () => {
    // An inner block map (a, b: two layers at 2x2), the deepest encoder stage (s1 → s2 → s3), then the
    // decoder's 1x1 projection of s3 (proj) before it upsamples; a later layer at 2x2 (d).
    const layers = [
      layer('a', 2, 8),
      layer('b', 2, 8),
      layer('up', 4, 8),
      layer('s1', 2, 16),
      layer('s2', 2, 16),
      layer('s3', 2, 16),
      layer('proj', 2, 16),
      layer('d', 2, 8),
    ];
    const links = new Map<string, LayerLink[]>([
      ['b', [{ name: 'a', pointwise: false }]],
      ['up', [{ name: 'b', pointwise: false }]],
      ['s1', [{ name: 'up', pointwise: false }]],
      ['s2', [{ name: 's1', pointwise: false }]],
      ['s3', [{ name: 's2', pointwise: false }]],
      ['proj', [{ name: 's3', pointwise: true }]],
      [
        'd',
        [
          { name: 'proj', pointwise: false },
          { name: 'up', pointwise: false },
        ],
      ],
    ]);
    // Without the graph: the deepest at 2x2 (the old rule).
    assert.equal(findBottleneck(layers).name, 'd');
    // With it (d left out: a decoder layer reading proj would join the s-group and, being last, be kept):
    // the s-group is the largest; its last layer proj is a 1x1 projection of s3, so s3 — unless proj is not position-wise.
    const noD = layers.filter((l) => l.name !== 'd');
    assert.equal(findBottleneck(noD, links).name, 's3');
    assert.equal(findBottleneck(noD, new Map([...links, ['proj', [{ name: 's3', pointwise: false }]]])).name, 'proj');
  });
});

// Expected layers, chosen by reading each architecture (scripts/zoo/models.py, the bundled models' READMEs).
const cases: Array<[string, string, string]> = [
  // U²-Net: stage 6 (RSU-4F, 1/32, 2x2) is the last encoder stage; its output is upsampled into stage 5d.
  // The RSU blocks' inner maps reach 2x2 too (stages 3, 4, 4d…), and side output 6 is 1 channel at 2x2.
  ['fixtures/zoo/u2net-like/model.onnx', '/stage6/Add_output_0', 'encoder stage 6 output'],
  ['fixtures/zoo/u2net-like/model.shuffled.onnx', '/stage6/Add_output_0', 'the same, nodes out of order'],
  ['fixtures/zoo/u2net-like/model.f16.onnx', '/stage6/Add_output_0', 'the same, float16: not a Cast'],
  ['fixtures/zoo/u2net-like/model.f16.shuffled.onnx', '/stage6/Add_output_0', 'float16, out of order'],
  ['fixtures/zoo/u2net-like/model.int8.onnx', '/stage6/Add_output_0', 'dynamic int8 (the dequantised graph)'],
  // nnU-Net: encoder stage 4 (64 ch, 1/16, 4x6), read by the first ConvTranspose of the decoder.
  ['fixtures/zoo/nnunet-like/model.onnx', '/encoder.4/encoder.4.1/nonlin/LeakyRelu_output_0', 'last encoder stage'],
  ['fixtures/zoo/nnunet-like/model.f16.onnx', '/encoder.4/encoder.4.1/nonlin/LeakyRelu_output_0', 'float16'],
  // SegFormer: stage 4's tokens reshaped to a 3x3 map (1/32); the all-MLP decoder's linear projection of it
  // (/decode_head/Reshape_7, also 3x3) is the decoder's first step; stages 1–3's spatial-reduction convs are 3x3 too.
  // Token layers are listed as grids (src/engine/onnx/tokens.ts), so the walk back through position-wise steps
  // (the to-map reshape, the stage's LayerNorm) ends at stage 4's last residual output: the same 3x3 tokens, unnormalised.
  ['fixtures/zoo/segformer-b0-like/model.onnx', '/stages.3/blocks.1/ffn/fc2/Add_output_0', 'stage 4 as a map'],
  ['fixtures/zoo/segformer-b0-like/model.f16.onnx', '/stages.3/blocks.1/ffn/fc2/Add_output_0', 'float16'],
  ['fixtures/zoo/segformer-b0-like/model.int8.onnx', '/stages.3/blocks.1/ffn/fc2/Add_output_0', 'int8'],
  // The torch.onnx export of the project's U-Net: the second conv of the bottleneck block (4x8 at 1/8).
  ['fixtures/onnx/unet-small.onnx', '/bottleneck/Relu_1_output_0', 'U-Net bottleneck block'],
  // The bundled U-Nets (the README's demo): the bottleneck block's second ReLU (4x4), read by up4.
  ['models/unet-texture-mnist-biased/model.json', 'bottleneck_relu2', 'bundled U-Net'],
  ['models/unet-texture-mnist-biased-base8/model.json', 'bottleneck_relu2', 'bundled U-Net, base 8'],
  ['models/unet-texture-mnist-unbiased/model.json', 'bottleneck_relu2', 'bundled U-Net, unbiased'],
  // MediaPipe selfie: the last squeeze-and-excitation-gated block at 1/16 (16x16x128), right before the
  // decoder's first ResizeBilinear; the SE gates' 1x1 maps are skipped.
  ['models/selfie/selfie.json', 'multiply_6', 'selfie encoder output'],
  // No clear bottleneck (generated by `scripts/zoo/export.py torchvision`; skipped when absent): one resolution from
  // the backbone's middle to the classifier, so the head's last spatial feature — the input of the 1x1 classifier.
  ['fixtures/zoo/generated/fcn-resnet50/model.onnx', '/m/classifier/classifier.2/Relu_output_0', 'FCN head 3x3 conv'],
  ['fixtures/zoo/generated/deeplabv3-mobilenetv3/model.onnx', '/m/classifier/classifier.3/Relu_output_0', 'after ASPP'],
  ['fixtures/zoo/generated/lraspp-mobilenetv3/model.onnx', '/m/classifier/Mul_output_0', 'LR-ASPP gated product'],
];

describe('the automatic layer on the zoo and the bundled models', () => {
  for (const [file, expected, why] of cases) {
    const missing = !existsSync(file) && 'generated by scripts/zoo/export.py torchvision (not committed)';
    test(`${file}: ${expected} (${why})`, { skip: missing }, async () => {
      const { adapter } = await openModelSource(file, {});
      try {
        assert.equal(new Explainer(adapter).bottleneck, expected);
      } finally {
        adapter.dispose();
      }
    });
  }
});
