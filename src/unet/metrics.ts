/** Confusion matrices and intersection-over-union for segmentation. */

/** A classes x classes confusion matrix, rows = truth, columns = prediction (counts, row-major). */
export class Confusion {
  readonly counts: Float64Array;

  constructor(readonly classes: number) {
    this.counts = new Float64Array(classes * classes);
  }

  /** Adds pixels: truth[i], pred[i] class ids. */
  add(truth: ArrayLike<number>, pred: ArrayLike<number>): this {
    const k = this.classes;
    if (truth.length !== pred.length) throw new Error(`confusion: ${truth.length} truths vs ${pred.length} predictions`);
    for (let i = 0; i < truth.length; i++) this.counts[truth[i] * k + pred[i]] += 1;
    return this;
  }

  /** Multiplies every count by `factor` (for a running, exponentially-decayed matrix). */
  decay(factor: number): this {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] *= factor;
    return this;
  }

  /** Per-class IoU = TP / (TP + FP + FN); NaN for a class that is in neither truth nor prediction. */
  iou(): number[] {
    const k = this.classes;
    const out: number[] = [];
    for (let c = 0; c < k; c++) {
      const tp = this.counts[c * k + c];
      let row = 0;
      let col = 0;
      for (let j = 0; j < k; j++) {
        row += this.counts[c * k + j];
        col += this.counts[j * k + c];
      }
      const union = row + col - tp;
      out.push(union > 0 ? tp / union : NaN);
    }
    return out;
  }

  /** Mean IoU over the classes with a non-empty union (all of them on any reasonable eval set). */
  meanIou(): number {
    return meanDefined(this.iou());
  }

  /** Pixel accuracy. */
  accuracy(): number {
    let tp = 0;
    let all = 0;
    for (let c = 0; c < this.classes; c++) tp += this.counts[c * this.classes + c];
    for (const v of this.counts) all += v;
    return all > 0 ? tp / all : NaN;
  }
}

export function meanDefined(values: number[]): number {
  const ok = values.filter((v) => !Number.isNaN(v));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
}
