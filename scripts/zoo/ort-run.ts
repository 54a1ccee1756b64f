/**
 * Runs an ONNX model once on ONNX Runtime (onnxruntime-node) for scripts/zoo/verify.py:
 *   node --import tsx scripts/zoo/ort-run.ts MODEL INPUT.bin H W OUT.bin [OUTPUT_NAME…]
 * INPUT.bin holds float32 [1, 3, H, W]; the named outputs (all of the model's when none is named)
 * are written to OUT.bin as float32, one after the other, and their names, shapes and offsets
 * are printed as JSON. A load or run error is printed as {"error": message} (exit 0), so the
 * caller records it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, inputPath, h, w, outPath, ...names] = process.argv.slice(2);
if (!model || !inputPath || !h || !w || !outPath) {
  console.error('usage: ort-run.ts MODEL INPUT.bin H W OUT.bin [OUTPUT…]');
  process.exit(2);
}

/** IEEE half-precision bits to float32 (onnxruntime-node hands float16 tensors over as Uint16Array). */
function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const sign = b & 0x8000 ? -1 : 1;
    const exp = (b >> 10) & 0x1f;
    const frac = b & 0x3ff;
    out[i] =
      exp === 0
        ? sign * 2 ** -14 * (frac / 1024)
        : exp === 31
          ? frac
            ? NaN
            : sign * Infinity
          : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}

async function main(): Promise<void> {
  const session = await ort.InferenceSession.create(model!, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const buf = readFileSync(inputPath!);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const input = new ort.Tensor('float32', data.slice(), [1, 3, Number(h), Number(w)]);
  const fetch = names.length > 0 ? names : [...session.outputNames];
  const t0 = performance.now();
  const out = await session.run({ [session.inputNames[0]!]: input }, fetch);
  const ms = performance.now() - t0;
  const index: Record<string, { offset: number; shape: number[]; type: string }> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const name of fetch) {
    const t = out[name]!;
    const f = t.type === 'float16' ? halfToFloat(t.data as Uint16Array) : Float32Array.from(t.data as ArrayLike<number>);
    index[name] = { offset, shape: [...t.dims], type: t.type };
    parts.push(Buffer.from(f.buffer));
    offset += f.byteLength;
  }
  writeFileSync(outPath!, Buffer.concat(parts));
  console.log(JSON.stringify({ ms, outputs: index }));
}

main().catch((e: unknown) => {
  console.log(JSON.stringify({ error: e instanceof Error ? e.message : String(e) }));
});
