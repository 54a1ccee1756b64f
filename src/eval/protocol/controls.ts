/**
 * Control "methods" for the protocols: attributions that never look at the model, so a protocol
 * that cannot tell them from a real explanation is not measuring faithfulness. The Sobel edge map
 * of the image is the sanity checks' classic negative control (Adebayo et al. 2018, Fig. 1: an
 * edge detector resembles several saliency maps yet ignores the weights).
 */
import type { RgbaImage } from '../../image.js';
import type { ProtocolTile } from './attribution.js';

/** The Sobel gradient magnitude of the image's grey level (mean of R, G, B), edge pixels clamped: width × height. */
export function sobel(image: RgbaImage): Float32Array {
  const { width: W, height: H, data } = image;
  const grey = (x: number, y: number) => {
    const o = (Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))) * 4;
    return (data[o] + data[o + 1] + data[o + 2]) / (3 * 255);
  };
  const out = new Float32Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const gx =
        grey(x + 1, y - 1) + 2 * grey(x + 1, y) + grey(x + 1, y + 1) - grey(x - 1, y - 1) - 2 * grey(x - 1, y) - grey(x - 1, y + 1);
      const gy =
        grey(x - 1, y + 1) + 2 * grey(x, y + 1) + grey(x + 1, y + 1) - grey(x - 1, y - 1) - 2 * grey(x, y - 1) - grey(x + 1, y - 1);
      out[y * W + x] = Math.hypot(gx, gy);
    }
  }
  return out;
}

/** A ProtocolCondition `attribute` function: the tile's Sobel edge map (the class and the model are ignored). */
export const sobelControl = (tile: ProtocolTile): Float32Array => sobel(tile.image);
