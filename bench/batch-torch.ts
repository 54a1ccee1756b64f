/**
 * The batch run against pytorch-grad-cam's natural loop (bench/batch.ts calls it; not a test).
 * pytorch-grad-cam itself cannot be installed here (Debian packages only), so
 * scripts/batch/gradcam_loop.py re-implements its loop — one `cam(input, targets)` per image and
 * class present: a forward pass with hooks, backward of Σ_M logits, α = mean of the gradients,
 * ReLU(Σ α A), upsampled, min-max normalised and saved — on the same weights: the ONNX fixture
 * U-Net (fixtures/onnx/unet-small.onnx, 32x64) and the PyTorch module it was exported from, its
 * weights read from the .onnx file. Same images (32x64 crops of the synthetic tiles), same
 * requests (every class predicted in the image, its class region, the bottleneck); our side runs
 * `explainDataset` on the .onnx. Timed in turns (ours, then a fresh Python process timing one
 * pass over the images after an untimed one); medians. The raw CAMs of the first images are compared.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestResult } from '../src/batch/item.js';
import { explainDataset } from '../src/batch/run.js';
import { createTextureMnist } from '../src/data/assets-node.js';
import { createImage } from '../src/image.js';
import { encodePng } from '../src/io/codec.js';
import { median } from './timing.js';

const PYTHON = '/usr/bin/python3';
const ONNX_MODEL = 'fixtures/onnx/unet-small.onnx';
const H = 32;
const W = 64;
const CAM_IMAGES = 3;

interface TorchOut {
  torch: string;
  threads: number;
  seconds: number[];
  requests: Array<[number, number]>;
  cams: Array<{ image: number; class: number; shape: [number, number]; cam: number[] }>;
}

/** A float32 .npy file's values (the batch run's raw CAMs: little-endian '<f4', C order). */
function readNpy(path: string): Float32Array {
  const b = readFileSync(path);
  const headerLen = b.readUInt16LE(8);
  const data = b.subarray(10 + headerLen);
  return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export async function torchComparison(images: number, turns: number): Promise<void> {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log(
      `\n# PyTorch comparison: skipped (${PYTHON} cannot import torch and onnx: ${(probe.stderr ?? '').trim().split('\n').pop()})`,
    );
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sgc-bench-batch-torch-'));
  const data = await createTextureMnist({ seed: 7 });
  mkdirSync(join(dir, 'img'));
  const inputs = new Float32Array(images * 3 * H * W);
  for (let k = 0; k < images; k++) {
    const s = data.sample('heldout', k);
    const img = createImage(W, H);
    img.data.set(s.image.data.subarray(0, W * H * 4)); // the tile's top 32 rows (tiles are 64 wide)
    writeFileSync(join(dir, 'img', `img-${String(k).padStart(4, '0')}.png`), encodePng(img));
    for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) inputs[(k * 3 + c) * H * W + i] = img.data[i * 4 + c] / 255;
  }
  writeFileSync(join(dir, 'inputs.bin'), Buffer.from(inputs.buffer));
  writeFileSync(
    join(dir, 'spec.json'),
    JSON.stringify({ onnx: ONNX_MODEL, count: images, height: H, width: W, turns: 1, camImages: CAM_IMAGES }),
  );

  const ours: Record<string, number[]> = { 'this thread': [], '2 worker threads': [] };
  const theirs: number[] = [];
  let torch: TorchOut | undefined;
  let lastOut = '';
  for (let turn = 0; turn < turns; turn++) {
    for (const [label, workers] of [
      ['this thread', 0],
      ['2 worker threads', 2],
    ] as const) {
      const out = join(dir, `out-${turn}-${workers}`);
      const it = explainDataset({
        model: ONNX_MODEL,
        input: join(dir, 'img'),
        outDir: out,
        workers,
        plan: { classes: 'present', region: 'class-region' },
      });
      const at: number[] = [];
      for (let r = await it.next(); !r.done; r = await it.next()) at.push(performance.now());
      const k = Math.min(Math.max(1, workers), at.length) - 1;
      ours[label].push((at.length - 1 - k) / ((at[at.length - 1] - at[k]) / 1000));
      if (lastOut) rmSync(lastOut, { recursive: true, force: true });
      lastOut = out;
    }
    const py = spawnSync(PYTHON, ['scripts/batch/gradcam_loop.py', dir], {
      encoding: 'utf8',
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
      maxBuffer: 1 << 26,
    });
    if (py.status !== 0) throw new Error(`gradcam_loop.py failed: ${py.stderr}`);
    torch = JSON.parse(py.stdout) as TorchOut;
    theirs.push(images / torch.seconds[0]);
    console.log(`# torch turn ${turn + 1} of ${turns} done, load ${loadavg()[0].toFixed(1)}`);
  }
  if (!torch) return;

  // Same requests: (image, class) pairs of our results against the loop's.
  const rows = readFileSync(join(lastOut, 'results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RequestResult);
  const key = (image: number, cls: number) => `${image}/${cls}`;
  const imageOf = (item: string) => Number(/img-(\d+)\.png$/.exec(item)?.[1]);
  const ourKeys = new Set(rows.map((r) => key(imageOf(r.item), r.classIndex)));
  const theirKeys = new Set(torch.requests.map(([i, c]) => key(i, c)));
  const onlyOurs = [...ourKeys].filter((k) => !theirKeys.has(k)).length;
  const onlyTheirs = [...theirKeys].filter((k) => !ourKeys.has(k)).length;
  // Raw CAMs at the bottleneck (2x4 here) of the first images.
  let worst = 0;
  let compared = 0;
  for (const c of torch.cams) {
    const r = rows.find((row) => imageOf(row.item) === c.image && row.classIndex === c.class);
    if (!r) continue;
    const cam = readNpy(join(lastOut, r.paths.cam));
    const scale = Math.max(...c.cam.map(Math.abs), 1e-30);
    for (let i = 0; i < cam.length; i++) worst = Math.max(worst, Math.abs(cam[i] - c.cam[i]) / scale);
    compared++;
  }
  rmSync(dir, { recursive: true, force: true });

  console.log(
    `\n# PyTorch comparison: ${images} images (32x64 crops of the tiles), every class predicted, its class region, Grad-CAM at the bottleneck`,
  );
  console.log(
    `# model ${ONNX_MODEL}: ours on ONNX Runtime (explainDataset, one forward per image, batched backward), theirs a re-implementation of pytorch-grad-cam's loop (scripts/batch/gradcam_loop.py; torch ${torch.torch}, ${torch.threads} threads, OPENBLAS_NUM_THREADS=1)`,
  );
  console.log(`# requests: ${ourKeys.size} ours, ${theirKeys.size} theirs; ${onlyOurs} only ours, ${onlyTheirs} only theirs`);
  console.log('| side | items/s (median) | each turn |');
  console.log('|---|---:|---|');
  for (const [label, r] of Object.entries(ours))
    console.log(`| seg-grad-cam batch, ${label} | ${median(r).toFixed(2)} | ${r.map((v) => v.toFixed(2)).join(', ')} |`);
  console.log(`| pytorch-grad-cam loop (re-implemented) | ${median(theirs).toFixed(2)} | ${theirs.map((v) => v.toFixed(2)).join(', ')} |`);
  console.log(
    `# raw CAMs of the first ${CAM_IMAGES} images (${compared} requests): max |ours − torch| / max |torch| = ${worst.toExponential(2)}`,
  );
}
