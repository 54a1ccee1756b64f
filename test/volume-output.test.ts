/**
 * Outputs of a volume explanation: slices (hand case), the CAM on the volume grid, the CAM as a
 * NIfTI volume with the input's affine, the three-slice figure as PNG — end to end on the
 * fixture volume and 3-D U-Net.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeRuntime } from '../src/engine/onnx/node.js';
import { decodeImage, encodePng } from '../src/io/codec.js';
import { readNiftiFile, writeNiftiFile } from '../src/io/nifti-node.js';
import { camOnVolume, explainVolume } from '../src/volume/explain.js';
import { maskCentre, orthogonalFigure, sliceOf } from '../src/volume/figure.js';
import { OnnxVolumeModel } from '../src/volume/onnx-volume.js';
import type { Dims3 } from '../src/volume/regions.js';

test('slices: axial rows h / columns w; coronal and sagittal rows d from the top slice down', () => {
  const dims: Dims3 = [2, 3, 4];
  const vol = Float32Array.from({ length: 24 }, (_, i) => i); // value = (d·3 + h)·4 + w
  assert.deepEqual(Array.from(sliceOf(vol, dims, 'axial', 1).data), [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
  assert.deepEqual(Array.from(sliceOf(vol, dims, 'coronal', 2).data), [20, 21, 22, 23, 8, 9, 10, 11]);
  assert.deepEqual(Array.from(sliceOf(vol, dims, 'sagittal', 3).data), [15, 19, 23, 3, 7, 11]);
  const m = new Uint8Array(24);
  m[(1 * 3 + 2) * 4 + 3] = 1;
  m[(1 * 3 + 0) * 4 + 1] = 1;
  assert.deepEqual(maskCentre(m, dims), [1, 1, 2]);
});

test('CAM on the volume grid (nearest, whole factors)', () => {
  const cam = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8); // [2, 2, 2]
  const up = camOnVolume(cam, [2, 2, 2], [2, 4, 2]);
  assert.deepEqual(Array.from(up), [1, 2, 1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8, 7, 8]);
  assert.throws(() => camOnVolume(cam, [2, 2, 2], [3, 4, 2]));
});

test('end to end: NIfTI in, explanation, CAM as NIfTI with the input affine, three-slice PNG', async () => {
  const dir = new URL('../fixtures/volume/', import.meta.url);
  const src = await readNiftiFile(new URL('volume.nii.gz', dir).pathname);
  const dims: Dims3 = [src.dims[2], src.dims[1], src.dims[0]];
  const model = await OnnxVolumeModel.create(new Uint8Array(readFileSync(new URL('unet3d.onnx', dir))), nodeRuntime);
  const out = mkdtempSync(join(tmpdir(), 'sgc-volume-'));
  try {
    const e = await explainVolume(model, src.data, {
      region: { kind: 'box', box: [4, 5, 6, 8, 14, 16] },
      layer: '/dec2/act/Relu_output_0',
    });
    const cam = camOnVolume(e.cam, e.camDims, dims);
    assert.equal(cam.length, src.data.length);
    await writeNiftiFile(join(out, 'cam.nii.gz'), cam, src.dims, src, 'Seg-Grad-CAM');
    const back = await readNiftiFile(join(out, 'cam.nii.gz'));
    assert.deepEqual(back.affine, src.affine);
    assert.deepEqual(Array.from(back.data), Array.from(cam));
    const fig = orthogonalFigure(src.data, dims, cam, e.mask);
    const png = decodeImage(encodePng(fig), 'figure');
    assert.equal(png.width, fig.width);
    assert.ok(fig.width > 3 * 24 && fig.height > 24);
  } finally {
    rmSync(out, { recursive: true, force: true });
    await model.dispose();
  }
});
