/**
 * Protocol 5, α across locations: Seg-Grad-CAM's channel weights at the bottleneck for single-pixel
 * regions on the bias digit, their cosine similarities within and between digit instances and their
 * PCA. Run, plots, summary, section and note.
 */
import type { TextureMnistSample } from '../../data/texture-mnist.js';
import { pixel as pixelRegion } from '../../region/region.js';
import { cosineMatrix, pca } from '../embedding.js';
import type { EvalContext } from '../setup.js';
import type { AlphaPoint, AlphaResult } from '../results.js';
import { encodePng } from '../../io/codec.js';
import { colormap, type Rgb } from '../../render/colormap.js';
import { matrixPlot, scatterPlot } from '../plot.js';
import { categorical, hstack, vstack } from '../canvas.js';
import { fmt, type ReportView } from '../report-view.js';

/** Which instance of the bias digit a pixel belongs to (the last placed one whose frame holds it). */
function instanceAt(sample: TextureMnistSample, digit: number, x: number, y: number): number {
  for (let i = sample.digits.length - 1; i >= 0; i--) {
    const d = sample.digits[i];
    if (d.digit === digit && x >= d.x && y >= d.y && x < d.x + d.size && y < d.y + d.size) return i;
  }
  return -1;
}

/** α across locations: Seg-Grad-CAM at the bottleneck for single-pixel regions on the bias class, per model. */
export async function runAlpha(ctx: EvalContext): Promise<AlphaResult[]> {
  const { o, loaded, W, samples, tiles, biasDigit, biasClass, alphaTiles, tick } = ctx;
  const alphaPerModel = alphaTiles > 0 && o.alphaPixels > 0;
  const alpha: AlphaResult[] = [];
  if (alphaPerModel) {
    for (const { explainer, info } of loaded) {
      const points: AlphaPoint[] = [];
      const vectors: Float32Array[] = [];
      let zero = 0;
      for (let ti = 0; ti < alphaTiles; ti++) {
        const s = samples[ti];
        const px: number[] = [];
        s.labels.forEach((v, i) => v === biasClass && px.push(i));
        const n = Math.min(o.alphaPixels, px.length);
        const chosen = Array.from({ length: n }, (_, k) => px[Math.floor(((k + 0.5) * px.length) / n)]);
        // The tile's pixels in one batched backward pass (K stacked cotangents).
        const explained = await explainer.explainMany(
          s.image,
          chosen.map((p) => ({
            region: pixelRegion(p % W, Math.floor(p / W)),
            classId: biasClass,
            layer: 'bottleneck',
            method: 'seg-grad-cam',
          })),
        );
        for (let k = 0; k < o.alphaPixels; k++) {
          if (k < n) {
            const x = chosen[k] % W;
            const y = Math.floor(chosen[k] / W);
            const e = explained[k];
            const inst = instanceAt(s, biasDigit, x, y);
            const d = s.digits[inst];
            const distance = d ? Math.hypot(x + 0.5 - (d.x + d.size / 2), y + 0.5 - (d.y + d.size / 2)) / d.size : Number.NaN;
            if (e.weights && e.weights.some((v) => v !== 0)) {
              points.push({ tile: tiles[ti].index, instance: inst, x, y, distance });
              vectors.push(e.weights);
            } else zero++;
          }
          tick(`alpha (${info.label})`);
        }
        explainer.release();
      }
      // Rows by instance (tile, then instance), then by distance to the centre.
      const idx = points.map((_, i) => i);
      idx.sort(
        (a, b) =>
          points[a].tile - points[b].tile || points[a].instance - points[b].instance || points[a].distance - points[b].distance || a - b,
      );
      const pts = idx.map((i) => points[i]);
      const vecs = idx.map((i) => vectors[i]);
      const cos = cosineMatrix(vecs);
      let within = 0;
      let wn = 0;
      let between = 0;
      let bn = 0;
      for (let i = 0; i < pts.length; i++) {
        for (let j = i + 1; j < pts.length; j++) {
          const v = cos[i * pts.length + j];
          if (!Number.isFinite(v)) continue;
          if (pts[i].tile === pts[j].tile && pts[i].instance === pts[j].instance) {
            within += v;
            wn++;
          } else {
            between += v;
            bn++;
          }
        }
      }
      const p = pca(vecs, 2, { seed: o.seed });
      alpha.push({
        model: info.label,
        layer: explainer.bottleneck,
        classIndex: biasClass,
        points: pts,
        cosine: Array.from(cos),
        pca: { coords: p.coords, explained: p.explained },
        withinInstance: wn > 0 ? within / wn : Number.NaN,
        betweenInstances: bn > 0 ? between / bn : Number.NaN,
        zero,
      });
    }
  }
  return alpha;
}

/** A distance colour (viridis, t in [0, 1]). */
const colorAt = (t: number): Rgb => colormap('viridis', t);

/** alpha-cosine.png and alpha-embedding.png: the cosine matrix of α and its PCA. */
export function alphaPlots(v: ReportView, images: Record<string, Uint8Array>): void {
  const { r } = v;
  // α across locations.
  if (r.alpha.length > 0 && r.alpha.some((a) => a.points.length > 1)) {
    const mats = r.alpha
      .filter((a) => a.points.length > 1)
      .map((a) => {
        const n = a.points.length;
        const bounds: number[] = [];
        for (let i = 1; i < n; i++)
          if (a.points[i].tile !== a.points[i - 1].tile || a.points[i].instance !== a.points[i - 1].instance) bounds.push(i);
        return matrixPlot(a.cosine, n, {
          title: `cos(alpha_i, alpha_j), ${a.model} model`,
          colormap: 'turbo',
          range: [-1, 1],
          boundaries: bounds,
          cell: Math.max(3, Math.floor(420 / n)),
          caption: `${n} pixels of digit ${r.dataset.biasDigit}; lines separate instances`,
        });
      });
    images['alpha-cosine.png'] = encodePng(hstack(mats, 24));
    const instances = (a: (typeof r.alpha)[number]) => [...new Set(a.points.map((p) => `${p.tile}:${p.instance}`))];
    const scatters = r.alpha
      .filter((a) => a.points.length > 1)
      .map((a) => {
        const inst = instances(a);
        const maxD = Math.max(...a.points.map((p) => p.distance).filter(Number.isFinite), 0.01);
        const ev = a.pca.explained.map((e) => fmt(100 * e, 0));
        const byInstance = scatterPlot({
          title: `PCA of alpha, ${a.model} model: by digit instance`,
          xLabel: `PC1 (${ev[0]}% of variance)`,
          yLabel: `PC2 (${ev[1] ?? '0'}%)`,
          points: a.points.map((p, i) => ({
            x: a.pca.coords[i][0],
            y: a.pca.coords[i][1] ?? 0,
            color: categorical(inst.indexOf(`${p.tile}:${p.instance}`)),
          })),
          legend: { entries: inst.map((k, i) => ({ label: `tile ${k.split(':')[0]} #${k.split(':')[1]}`, color: categorical(i) })) },
        });
        const byDistance = scatterPlot({
          title: `by distance to the digit's centre`,
          xLabel: `PC1 (${ev[0]}%)`,
          yLabel: `PC2 (${ev[1] ?? '0'}%)`,
          points: a.points.map((p, i) => ({ x: a.pca.coords[i][0], y: a.pca.coords[i][1] ?? 0, color: colorAt(p.distance / maxD) })),
          legend: { colormap: 'viridis', min: 0, max: maxD, label: 'dist/side' },
        });
        return hstack([byInstance, byDistance], 16);
      });
    images['alpha-embedding.png'] = encodePng(vstack(scatters, 24));
  }
}

/** Summary line: α across locations. */
export function alphaSummary(v: ReportView, md: string[]): void {
  const { r } = v;
  if (r.alpha.length > 0) {
    md.push(
      `* **α across locations** (Seg-Grad-CAM at the bottleneck, single-pixel regions on digit ${r.dataset.biasDigit}): mean cosine similarity within a digit instance vs between instances: ${r.alpha
        .map((a) => `${a.model} ${fmt(a.withinInstance, 2)} vs ${fmt(a.betweenInstances, 2)}`)
        .join(
          '; ',
        )}; the first two principal components explain ${r.alpha.map((a) => `${fmt(100 * (a.pca.explained[0] ?? NaN), 0)}% + ${fmt(100 * (a.pca.explained[1] ?? NaN), 0)}% (${a.model})`).join(', ')}.`,
    );
  }
}

/** Section 5: α across locations. */
export function alphaSection(v: ReportView, md: string[], images: Record<string, Uint8Array>): void {
  const { r } = v;
  // 5. α across locations.
  if (r.alpha.length > 0) {
    md.push('## 5. α across locations', '');
    md.push(
      `Seg-Grad-CAM's channel weights α (the spatial mean of ∂S/∂A at the bottleneck) for single-pixel regions on digit ${r.dataset.biasDigit} (class ${r.dataset.biasClass}): ` +
        `${r.options.alphaPixels} evenly spaced pixels of the class in each of the first ${r.options.alphaTiles} tiles. Rows of the cosine matrix are grouped by digit instance and sorted by distance to the digit frame's centre.`,
      '',
    );
    md.push(
      '| model | pixels | α = 0 (left out) | cosine within an instance | cosine between instances | PC1 | PC2 |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const a of r.alpha)
      md.push(
        `| ${a.model} | ${a.points.length} | ${a.zero} | ${fmt(a.withinInstance)} | ${fmt(a.betweenInstances)} | ${fmt(100 * (a.pca.explained[0] ?? NaN), 1)} % | ${fmt(100 * (a.pca.explained[1] ?? NaN), 1)} % |`,
      );
    md.push('');
    if (images['alpha-cosine.png']) md.push('![cosine similarity of α](alpha-cosine.png)', '', '![PCA of α](alpha-embedding.png)', '');
  }
}

/** Note on the cascade and the one-dimensional α. */
export function alphaNote(v: ReportView, md: string[]): void {
  const { r, steps } = v;
  if (r.alpha.length > 0 && steps.length > 0) {
    md.push(
      `* The cascade re-draws each block once (one seed). Seg-Grad-CAM's α at the bottleneck is nearly one-dimensional (PC1 explains ${fmt(100 * (r.alpha[0].pca.explained[0] ?? NaN), 0)} % of its variance, §5): randomising only the logits mostly rescales α, and whether the map survives that first step depends on the sign of the one random draw.`,
    );
  }
}
