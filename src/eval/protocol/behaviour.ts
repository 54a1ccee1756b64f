/**
 * Protocol 0, is the shortcut there? The models' behaviour (no heatmaps) on held-out tiles of the set
 * in which the bias texture is an ordinary background: the bias digit's IoU on and off the bias
 * texture, and how often other digits on it are labelled as the bias digit. Run, summary and section.
 */
import { createTextureMnist } from '../../data/assets-node.js';
import type { EvalContext } from '../setup.js';
import type { BehaviourResult } from '../results.js';
import { fmt, type ReportView } from '../report-view.js';

/** The behavioural check scans held-out tiles of the 'uniform' set from this index on. */
export const CHECK_OFFSET = 3_000_000;

/** Runs the check on held-out tiles of the set where the bias texture is an ordinary background (from CHECK_OFFSET on). */
export async function runBehaviour(ctx: EvalContext): Promise<BehaviourResult[]> {
  const { o, loaded, H, biasDigit, biasClass, biasTexture, checkTiles, tick } = ctx;
  const behaviour: BehaviourResult[] = [];
  if (checkTiles > 0) {
    const uniform = await createTextureMnist({
      size: H,
      seed: o.seed,
      biasDigit,
      biasTexture,
      biasStrength: 0,
      biasTextureAtZero: 'uniform',
    });
    for (const { explainer, info } of loaded) {
      const on = [0, 0, 0];
      const off = [0, 0, 0];
      const b: BehaviourResult = {
        model: info.label,
        iouOnBias: Number.NaN,
        iouOffBias: Number.NaN,
        tilesOnBias: 0,
        tilesOffBias: 0,
        tilesWithout: 0,
        digitPixelsAsBias: 0,
        backgroundPixelsAsBias: 0,
      };
      let digitPx = 0;
      let digitAs = 0;
      let bgPx = 0;
      let bgAs = 0;
      for (let i = 0; i < checkTiles; i++) {
        const s = uniform.sample('heldout', CHECK_OFFSET + i);
        const onBias = s.backgroundTexture === biasTexture;
        if (onBias || s.hasBiasDigit) {
          const p = (await explainer.predict(s.image)).labels;
          if (s.hasBiasDigit) {
            const acc = onBias ? on : off;
            if (onBias) b.tilesOnBias++;
            else b.tilesOffBias++;
            s.labels.forEach((l, k) => {
              const t = l === biasClass;
              const q = p[k] === biasClass;
              if (t && q) acc[0]++;
              else if (q) acc[1]++;
              else if (t) acc[2]++;
            });
          } else {
            b.tilesWithout++;
            s.labels.forEach((l, k) => {
              if (l === 0) {
                bgPx++;
                if (p[k] === biasClass) bgAs++;
              } else {
                digitPx++;
                if (p[k] === biasClass) digitAs++;
              }
            });
          }
        }
        tick(`behaviour (${info.label})`);
      }
      explainer.release();
      const iou = (a: number[]) => (a[0] + a[1] + a[2] > 0 ? a[0] / (a[0] + a[1] + a[2]) : Number.NaN);
      b.iouOnBias = iou(on);
      b.iouOffBias = iou(off);
      b.digitPixelsAsBias = digitPx > 0 ? digitAs / digitPx : Number.NaN;
      b.backgroundPixelsAsBias = bgPx > 0 ? bgAs / bgPx : Number.NaN;
      behaviour.push(b);
    }
    loaded.forEach((l) => l.counter.take());
  }
  return behaviour;
}

/** Summary line: is the shortcut there? */
export function behaviourSummary(v: ReportView, md: string[]): void {
  const { r } = v;
  const bh = r.behaviour;
  if (bh.length > 0) {
    md.push(
      `* **Is the shortcut there?** (behaviour on ${r.options.checkTiles} held-out tiles where '${r.dataset.biasTexture}' is an ordinary background): the IoU of digit ${r.dataset.biasDigit} on '${r.dataset.biasTexture}' vs on other backgrounds is ` +
        bh.map((b) => `**${fmt(b.iouOnBias)} vs ${fmt(b.iouOffBias)}** (${b.model})`).join(', ') +
        `; on '${r.dataset.biasTexture}' tiles without a ${r.dataset.biasDigit}, the share of digit pixels labelled ${r.dataset.biasDigit} is ` +
        bh.map((b) => `${fmt(100 * b.digitPixelsAsBias, 1)} % (${b.model})`).join(', ') +
        '.',
    );
  }
}

/** Section 0: the models' behaviour on tiles where the bias texture is an ordinary background. */
export function behaviourSection(v: ReportView, md: string[]): void {
  const { r } = v;
  const bh = r.behaviour;
  // 0. Behavioural check.
  if (bh.length > 0) {
    md.push('## 0. Is the shortcut there? (behaviour, no heatmaps)', '');
    md.push(
      `Before asking whether a heatmap reveals the bias, check that the model uses it: ${r.options.checkTiles} held-out tiles (from index ${r.dataset.checkOffset}) of the set in which '${r.dataset.biasTexture}' is an ordinary background for every tile (bias strength 0, 'uniform'). ` +
        `A model with the shortcut segments digit ${r.dataset.biasDigit} better on '${r.dataset.biasTexture}' than elsewhere, and labels other digits on '${r.dataset.biasTexture}' as ${r.dataset.biasDigit}.`,
      '',
    );
    md.push(
      `| model | IoU of digit ${r.dataset.biasDigit} on '${r.dataset.biasTexture}' (tiles) | IoU elsewhere (tiles) | '${r.dataset.biasTexture}' tiles without a ${r.dataset.biasDigit}: digit pixels labelled ${r.dataset.biasDigit} | … background pixels labelled ${r.dataset.biasDigit} |`,
      '|---|---:|---:|---:|---:|',
    );
    for (const b of bh)
      md.push(
        `| ${b.model} | ${fmt(b.iouOnBias)} (${b.tilesOnBias}) | ${fmt(b.iouOffBias)} (${b.tilesOffBias}) | ${fmt(100 * b.digitPixelsAsBias, 2)} % (${b.tilesWithout} tiles) | ${fmt(100 * b.backgroundPixelsAsBias, 3)} % |`,
      );
    md.push('');
  }
}
