/**
 * Float64 reference maths for the tiny U-Net, written with plain loops and no TF.js, so the
 * library's gradients can be checked against finite differences that are neither float32
 * noise nor the library's own code. Tensors are [h][w][c] as flat Float64Arrays.
 */
export interface Map3 {
  h: number;
  w: number;
  c: number;
  data: Float64Array;
}

export const map3 = (h: number, w: number, c: number, data?: ArrayLike<number>): Map3 => ({
  h,
  w,
  c,
  data: data ? Float64Array.from(data) : new Float64Array(h * w * c),
});

/** 'same' convolution, stride 1, kernel [kh, kw, cin, cout] (TF layout), plus bias. */
export function conv2dSame(x: Map3, kernel: ArrayLike<number>, kh: number, kw: number, cout: number, bias: ArrayLike<number>): Map3 {
  const y = map3(x.h, x.w, cout);
  const ph = Math.floor((kh - 1) / 2);
  const pw = Math.floor((kw - 1) / 2);
  for (let i = 0; i < x.h; i++)
    for (let j = 0; j < x.w; j++)
      for (let o = 0; o < cout; o++) {
        let s = bias[o];
        for (let di = 0; di < kh; di++)
          for (let dj = 0; dj < kw; dj++) {
            const ii = i + di - ph;
            const jj = j + dj - pw;
            if (ii < 0 || jj < 0 || ii >= x.h || jj >= x.w) continue;
            for (let c = 0; c < x.c; c++) s += x.data[(ii * x.w + jj) * x.c + c] * kernel[((di * kw + dj) * x.c + c) * cout + o];
          }
        y.data[(i * x.w + j) * cout + o] = s;
      }
  return y;
}

export function relu(x: Map3): Map3 {
  return { ...x, data: x.data.map((v) => (v > 0 ? v : 0)) };
}

export function maxPool2(x: Map3): Map3 {
  const y = map3(Math.floor(x.h / 2), Math.floor(x.w / 2), x.c);
  for (let i = 0; i < y.h; i++)
    for (let j = 0; j < y.w; j++)
      for (let c = 0; c < x.c; c++) {
        let m = -Infinity;
        for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) m = Math.max(m, x.data[((2 * i + di) * x.w + 2 * j + dj) * x.c + c]);
        y.data[(i * y.w + j) * x.c + c] = m;
      }
  return y;
}

/** Transposed convolution, kernel 2, stride 2; kernel [2, 2, cout, cin] (TF layout), plus bias. */
export function convTranspose2x2(x: Map3, kernel: ArrayLike<number>, cout: number, bias: ArrayLike<number>): Map3 {
  const y = map3(2 * x.h, 2 * x.w, cout);
  for (let i = 0; i < x.h; i++)
    for (let j = 0; j < x.w; j++)
      for (let di = 0; di < 2; di++)
        for (let dj = 0; dj < 2; dj++)
          for (let o = 0; o < cout; o++) {
            let s = bias[o];
            for (let c = 0; c < x.c; c++) s += x.data[(i * x.w + j) * x.c + c] * kernel[((di * 2 + dj) * cout + o) * x.c + c];
            y.data[((2 * i + di) * y.w + 2 * j + dj) * cout + o] = s;
          }
  return y;
}

export function concat(a: Map3, b: Map3): Map3 {
  const y = map3(a.h, a.w, a.c + b.c);
  for (let p = 0; p < a.h * a.w; p++) {
    for (let c = 0; c < a.c; c++) y.data[p * y.c + c] = a.data[p * a.c + c];
    for (let c = 0; c < b.c; c++) y.data[p * y.c + a.c + c] = b.data[p * b.c + c];
  }
  return y;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
