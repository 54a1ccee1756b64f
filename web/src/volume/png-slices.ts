/**
 * PNG files as a volume, in the browser: the rule of the CLI's `--slices folder`
 * (src/volume/slices-node.ts, docs/volumes.md "PNG slices") — the files sorted by name in natural
 * order (s2 before s10) are the axial slices d = 0, 1, …; rows are h, columns w; the value is the
 * grey level 0..255 (the luminance 0.299 R + 0.587 G + 0.114 B for colour pixels). No geometry:
 * 1 mm voxels. The browser decodes (no colour management: ../image-decode.ts).
 */
import { SegGradCamError } from '../../../src/errors.js';
import { decodeImage } from '../image-decode.js';
import type { Dims3 } from './protocol.js';

export const naturalOrder = new Intl.Collator('en', { numeric: true }).compare;

export async function stackPngSlices(
  files: Array<{ bytes: Uint8Array; name: string }>,
): Promise<{ data: Float32Array; dims: Dims3; names: string[] }> {
  const sorted = [...files].sort((a, b) => naturalOrder(a.name, b.name));
  if (sorted.length === 0) throw new SegGradCamError('no PNG slice was given', 'image');
  let H = 0;
  let W = 0;
  let data = new Float32Array(0);
  for (const [d, f] of sorted.entries()) {
    let im;
    try {
      im = await decodeImage(new Blob([f.bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' }), f.name);
    } catch (err) {
      throw new SegGradCamError(err instanceof Error ? err.message : String(err), 'image');
    }
    if (d === 0) {
      [H, W] = [im.height, im.width];
      data = new Float32Array(sorted.length * H * W);
    } else if (im.height !== H || im.width !== W)
      throw new SegGradCamError(
        `slice ${f.name} is ${im.width}x${im.height}, the first slice (${sorted[0].name}) ${W}x${H}: every slice must have the same size`,
        'image',
      );
    for (let i = 0; i < H * W; i++) {
      const [r, g, b] = [im.data[4 * i], im.data[4 * i + 1], im.data[4 * i + 2]];
      data[d * H * W + i] = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
    }
  }
  return { data, dims: [sorted.length, H, W], names: sorted.map((f) => f.name) };
}
