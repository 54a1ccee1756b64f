/**
 * An nnU-Net-style 3-D net with deep supervision (fixtures/volume/nnunet3d.onnx, scripts/volume/export.py):
 * InstanceNorm3d + LeakyReLU blocks, stride-2 convs instead of pooling, ConvTranspose3d up, two outputs
 * (the 1/2-resolution head listed first). The engine explains the full-resolution output unless told
 * otherwise; α and the CAM equal PyTorch autograd at three layers for a voxel and a box (≤ 1e-4).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { SegGradCamError } from '../src/errors.js';
import { defaultVolumeLayer, explainVolume } from '../src/volume/explain.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { VolumeRegion } from '../src/volume/regions.js';
import { relErr, VOLUME_DIR, volumeReference } from './helpers/volume-reference.js';

const DIR = VOLUME_DIR;
const { ref, tensor } = volumeReference('nnunet3d');
const bytes = () => new Uint8Array(readFileSync(new URL('nnunet3d.onnx', DIR)));

describe('nnU-Net-style 3-D net with deep supervision against PyTorch autograd', () => {
  test('the full-resolution output is explained by default; --output picks another; an unknown output is a typed error', async () => {
    const m = await OnnxVolumeModel.create(bytes(), nodeRuntime);
    try {
      assert.equal(m.logitsName, 'seg');
      assert.deepEqual(m.logitsDims, [1, 3, 16, 16, 16]);
      assert.ok(relErr(await m.predict(tensor('input')), tensor('logits')) < 1e-5);
      assert.equal(defaultVolumeLayer(m), ref.layers[1].onnx, 'the bottleneck');
    } finally {
      await m.dispose();
    }
    const ds = await OnnxVolumeModel.create(bytes(), nodeRuntime, { output: 'ds1' });
    try {
      assert.deepEqual(ds.logitsDims, [1, 3, 8, 8, 8]);
      assert.ok(relErr(await ds.predict(tensor('input')), tensor('logits/ds1')) < 1e-5);
    } finally {
      await ds.dispose();
    }
    await assert.rejects(
      OnnxVolumeModel.create(bytes(), nodeRuntime, { output: 'nope' }),
      (e: unknown) => e instanceof SegGradCamError && /no output 'nope'.*ds1, seg/.test(e.message),
    );
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
          const el = relErr(e.camLinear, tensor(`camLinear/${l.role}/${rname}`));
          const ec = relErr(e.cam, tensor(`cam/${l.role}/${rname}`));
          assert.ok(ea < 1e-4, `${l.role} α ${ea}`);
          assert.ok(el < 1e-4, `${l.role} CAM before ReLU ${el}`);
          assert.ok(ec < 1e-4, `${l.role} CAM ${ec}`);
          assert.deepEqual(e.camDims, l.shape.slice(2));
        }
      } finally {
        await m.dispose();
      }
    });
  }
});
