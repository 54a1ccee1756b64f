/**
 * The 3-D U-Net of fixtures/volume (scripts/volume/export.py) through the ONNX gradient graph:
 * logits, α and CAM at three layers for a voxel and a box region against PyTorch autograd.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { OnnxModelAdapter } from '../src/engine/onnx/adapter.js';
import { SegGradCamError } from '../src/errors.js';
import { explainVolume } from '../src/volume/explain.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { VolumeRegion } from '../src/volume/regions.js';
import { relErr, VOLUME_DIR, volumeReference } from './helpers/volume-reference.js';

const DIR = VOLUME_DIR;
const { ref, tensor } = volumeReference('reference');

const bytes = () => new Uint8Array(readFileSync(new URL('unet3d.onnx', DIR)));

describe('3-D U-Net (ONNX, 5-D tensors) against PyTorch autograd', () => {
  test('the 2-D adapter refuses the model, naming the rank', async () => {
    await assert.rejects(
      OnnxModelAdapter.create(bytes(), nodeRuntime),
      (e: unknown) => e instanceof SegGradCamError && /rank 5/.test(e.message),
    );
  });

  test('layers, logits', async () => {
    const m = await OnnxVolumeModel.create(bytes(), nodeRuntime);
    try {
      assert.deepEqual(m.inputDims, [1, 1, 16, 20, 24]);
      const names = m.layers().map((l) => l.name);
      for (const l of ref.layers) {
        assert.ok(names.includes(l.onnx), l.onnx);
        assert.deepEqual(m.layers().find((x) => x.name === l.onnx)?.shape, l.shape);
      }
      const logits = await m.predict(tensor('input'));
      assert.ok(relErr(logits, tensor('logits')) < 1e-5, `logits ${relErr(logits, tensor('logits'))}`);
    } finally {
      await m.dispose();
    }
  });

  for (const rname of ['voxel', 'box'] as const) {
    test(`α and CAM at three layers, ${rname} region, within 1e-4`, async () => {
      const m = await OnnxVolumeModel.create(bytes(), nodeRuntime);
      try {
        const region: VolumeRegion =
          rname === 'voxel' ? { kind: 'voxel', voxel: ref.regions.voxel.voxel } : { kind: 'box', box: ref.regions.box.box };
        for (const l of ref.layers) {
          const e = await explainVolume(m, tensor('input'), { region, classId: ref.class, layer: l.onnx });
          assert.ok(Math.abs(e.score - ref.scores[rname]) <= 1e-4 * Math.max(1, Math.abs(ref.scores[rname])), `S ${e.score}`);
          const ea = relErr(e.alpha, tensor(`alpha/${l.role}/${rname}`));
          const ec = relErr(e.cam, tensor(`cam/${l.role}/${rname}`));
          const el = relErr(e.camLinear, tensor(`camLinear/${l.role}/${rname}`));
          assert.ok(ea < 1e-4, `${l.role} α ${ea}`);
          assert.ok(el < 1e-4, `${l.role} CAM before ReLU ${el}`);
          assert.ok(ec < 1e-4, `${l.role} CAM ${ec}`);
          assert.deepEqual(e.camDims, l.shape.slice(2));
        }
        // Without a class, a voxel region takes its predicted class (PyTorch's argmax there).
        if (rname === 'voxel') assert.equal((await explainVolume(m, tensor('input'), { region })).classId, ref.class);
      } finally {
        await m.dispose();
      }
    });
  }
});

describe('5-D ops the U-Net does not use (fixtures/volume/ops3d.onnx) against PyTorch autograd', () => {
  test('strided Conv3d, InstanceNorm3d, AvgPool3d (with its Pad), padded ConvTranspose3d, nearest 5-D Resize: ∂S/∂x within 1e-4', async () => {
    const meta = JSON.parse(readFileSync(new URL('ops3d.json', DIR), 'utf8')) as {
      tensors: Record<string, { offset: number; shape: number[] }>;
    };
    const raw = readFileSync(new URL('ops3d.bin', DIR));
    const get = (k: string) => {
      const t = meta.tensors[k];
      const n = t.shape.reduce((a, b) => a * b, 1);
      return new Float32Array(raw.buffer.slice(raw.byteOffset + t.offset, raw.byteOffset + t.offset + 4 * n));
    };
    const m = await OnnxVolumeModel.create(new Uint8Array(readFileSync(new URL('ops3d.onnx', DIR))), nodeRuntime);
    try {
      const g = await m.gradient(get('input'), 'input', get('cotangent'));
      assert.ok(relErr(g.logits, get('logits')) < 1e-5, `logits ${relErr(g.logits, get('logits'))}`);
      const e = relErr(g.gradients, get('dSdx'));
      assert.ok(e < 1e-4, `∂S/∂x ${e}`);
    } finally {
      await m.dispose();
    }
  });
});
