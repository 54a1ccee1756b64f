/**
 * NIfTI in and out: the fixtures (written by nibabel) read with our reader against nibabel's own
 * reading (the reference volume and affine of fixtures/volume); a written volume read back by our
 * reader and by nibabel (Debian's /usr/bin/python3; skipped, saying why, without it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SegGradCamError } from '../src/errors.js';
import { decodeNifti, encodeNifti1, qformAffine, type Affine } from '../src/io/nifti.js';
import { readNiftiFile, writeNiftiFile } from '../src/io/nifti-node.js';

const DIR = new URL('../fixtures/volume/', import.meta.url);
const ref = JSON.parse(readFileSync(new URL('reference.json', DIR), 'utf8')) as {
  affine: number[][];
  input: { shape: number[] };
  tensors: Record<string, { offset: number; shape: number[] }>;
};
const bin = readFileSync(new URL('reference.bin', DIR));
const input = () => {
  const t = ref.tensors.input;
  const n = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(bin.buffer.slice(bin.byteOffset + t.offset, bin.byteOffset + t.offset + 4 * n));
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const affineDiff = (a: number[][], b: number[][]) => maxDiff(a.flat(), b.flat());

const PY = '/usr/bin/python3';
const nibabel = spawnSync(PY, ['-c', 'import nibabel, numpy'], { encoding: 'utf8' });
const noNibabel = nibabel.status === 0 ? false : `no nibabel for ${PY} (apt-get install python3-nibabel)`;

describe('NIfTI reader against nibabel-written fixtures', () => {
  test('NIfTI-1 .nii.gz, int16 with scl_slope/scl_inter, sform code 2 and qform code 1', async () => {
    const v = await readNiftiFile(new URL('volume.nii.gz', DIR).pathname);
    assert.equal(v.version, 1);
    assert.equal(v.datatype, 4);
    assert.deepEqual(v.dims, [24, 20, 16]);
    assert.equal(v.affineSource, 'sform');
    assert.equal(v.sformCode, 2);
    assert.equal(v.qform.code, 1);
    // nibabel's scaled values, [D, H, W] = the file order
    assert.ok(maxDiff(v.data, input()) < 1e-6, `data ${maxDiff(v.data, input())}`);
    assert.ok(affineDiff(v.affine, ref.affine) < 1e-5, 'sform');
    // The qform of the same file encodes the same (orthogonal × spacing) affine.
    assert.ok(affineDiff(qformAffine(v.qform, v.spacing), ref.affine) < 1e-5, 'qform');
  });

  test('NIfTI-2 .nii, float32', async () => {
    const v = await readNiftiFile(new URL('volume-nifti2.nii', DIR).pathname);
    assert.equal(v.version, 2);
    assert.equal(v.datatype, 16);
    assert.deepEqual(v.dims, [24, 20, 16]);
    // float32 of the int16-quantised values nibabel read (the same numbers)
    assert.ok(maxDiff(v.data, input()) < 1e-5);
    assert.ok(affineDiff(v.affine, ref.affine) < 1e-9, 'NIfTI-2 stores the affine in float64');
  });

  test('bad files: a typed error naming the problem', async () => {
    await assert.rejects(
      decodeNifti(new Uint8Array(10)),
      (e: unknown) => e instanceof SegGradCamError && /shorter than a header/.test(e.message),
    );
    const raw = encodeNifti1(new Float32Array(8), [2, 2, 2], {
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      spacing: [1, 1, 1],
      sformCode: 1,
      qform: { code: 0, b: 0, c: 0, d: 0, offset: [0, 0, 0], qfac: 1 },
      xyztUnits: 2,
    });
    await assert.rejects(
      decodeNifti(raw.subarray(0, raw.length - 4)),
      (e: unknown) => e instanceof SegGradCamError && /past the end/.test(e.message),
    );
    const wrongMagic = Uint8Array.from(raw);
    wrongMagic[345] = 0x3f;
    await assert.rejects(decodeNifti(wrongMagic), (e: unknown) => e instanceof SegGradCamError && /magic/.test(e.message));
    await assert.rejects(readNiftiFile('/nonexistent/x.nii'), (e: unknown) => e instanceof SegGradCamError && e.code === 'file');
  });

  test('qform without sform: the rotation from the quaternion (hand case: 90° about z, qfac −1)', async () => {
    // b = c = 0, d = sin(45°): R = [[0,-1,0],[1,0,0],[0,0,1]]; spacing 2, 3, 4; qfac −1 flips k.
    const s = Math.SQRT1_2;
    const a = qformAffine({ code: 1, b: 0, c: 0, d: s, offset: [5, 6, 7], qfac: -1 }, [2, 3, 4]);
    const expected: Affine = [
      [0, -3, 0, 5],
      [2, 0, 0, 6],
      [0, 0, -4, 7],
      [0, 0, 0, 1],
    ];
    assert.ok(affineDiff(a, expected) < 1e-12, JSON.stringify(a));
  });
});

describe('NIfTI writer: float32 NIfTI-1 with the source affine', () => {
  for (const name of ['out.nii', 'out.nii.gz']) {
    test(`${name}: read back by our reader and by nibabel`, async (t) => {
      const src = await readNiftiFile(new URL('volume.nii.gz', DIR).pathname);
      const data = Float32Array.from(src.data, (x, i) => x * 0.5 + Math.sin(i)); // not the source's values
      const dir = mkdtempSync(join(tmpdir(), 'sgc-nifti-'));
      try {
        const path = join(dir, name);
        await writeNiftiFile(path, data, src.dims, src, 'seg-grad-cam test');
        const back = await readNiftiFile(path);
        assert.deepEqual(back.dims, src.dims);
        assert.equal(maxDiff(back.data, data), 0);
        assert.ok(affineDiff(back.affine, src.affine) === 0, 'sform copied exactly (float32 to float32)');
        assert.equal(back.sformCode, 2);
        assert.deepEqual(back.qform, src.qform);
        if (noNibabel) {
          t.skip(noNibabel);
          return;
        }
        const py = spawnSync(
          PY,
          [
            '-c',
            'import sys, json, nibabel as nib, numpy as np\n' +
              'img = nib.load(sys.argv[1])\n' +
              'a = np.asarray(img.get_fdata(dtype=np.float32))\n' +
              'a.transpose(2, 1, 0).astype("<f4").tofile(sys.argv[2])\n' +
              'h = img.header\n' +
              'print(json.dumps({"shape": list(a.shape), "affine": img.affine.tolist(), "qform": img.get_qform().tolist(), ' +
              '"codes": [int(h["sform_code"]), int(h["qform_code"])], "dtype": str(h.get_data_dtype())}))',
            path,
            join(dir, 'data.bin'),
          ],
          { encoding: 'utf8' },
        );
        assert.equal(py.status, 0, py.stderr);
        const info = JSON.parse(py.stdout) as { shape: number[]; affine: number[][]; qform: number[][]; codes: number[]; dtype: string };
        assert.deepEqual(info.shape, src.dims);
        assert.equal(info.dtype, 'float32');
        assert.deepEqual(info.codes, [2, 1]);
        const fromPy = new Float32Array(readFileSync(join(dir, 'data.bin')).buffer.slice(0));
        assert.equal(maxDiff(fromPy, data), 0);
        assert.ok(affineDiff(info.affine, ref.affine) < 1e-5, 'nibabel reads the source affine');
        assert.ok(affineDiff(info.qform, ref.affine) < 1e-5, "nibabel's qform is the source's");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
