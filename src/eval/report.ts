/**
 * The evaluation report: Markdown with the key figures on top, full tables below, and PNG plots
 * drawn with the project's own renderer. Pure: results in, file contents out (the caller writes
 * them). Every number except the timing columns is reproducible from the options.
 */
import { encodePng } from '../io/codec.js';
import type { RgbaImage } from '../image.js';
import { renderFigure, type Panel } from '../render/figure.js';
import { contourMask, drawContour, overlayHeatmap } from '../render/overlay.js';
import { colormap, type Rgb } from '../render/colormap.js';
import { barChart, categorical, hstack, lineChart, matrixPlot, scatterPlot, vstack, type Series } from './plot.js';
import { conditionKey, type ConditionResult, type EvaluationResults } from './run.js';
import { mean, median, std } from './stats.js';

export interface ReportFiles {
  /** report.md */
  markdown: string;
  /** PNG plots by file name. */
  images: Record<string, Uint8Array>;
  /** results.json: every number of the report (timings under "timing" and "ms"). */
  json: string;
}

export interface ReportContext {
  /** The command line that produced the results (shown under "Reproduce"). */
  command?: string;
  /** How paths are shown (e.g. relative to the working directory). */
  displayPath?: (path: string) => string;
}

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const pm = (values: number[], digits = 3): string => {
  const m = mean(values);
  const s = std(values);
  return Number.isFinite(m) ? `${m.toFixed(digits)}${Number.isFinite(s) ? ` ± ${s.toFixed(digits)}` : ''}` : 'n/a';
};
const nanCount = (values: number[]): number => values.filter((v) => !Number.isFinite(v)).length;
const BLACK: Rgb = [20, 20, 20];

/** Mean Spearman correlation per cascade step (over the sanity tiles). */
export function sanityMeans(c: ConditionResult): number[] {
  return c.sanity.map((row) => mean(row));
}

export function buildReport(r: EvaluationResults, ctx: ReportContext = {}): ReportFiles {
  const show = ctx.displayPath ?? ((p: string) => p);
  const images: Record<string, Uint8Array> = {};
  const md: string[] = [];
  const labels = r.models.map((m) => m.label);
  const two = r.models.length > 1;
  const bottleneck = r.layers.find((l) => l.role === 'bottleneck')?.name ?? r.layers[0]?.name;
  const chance = mean(r.tiles.map((t) => t.biasArea));
  const find = (method: string, layer: string) => r.conditions.find((c) => c.method === method && c.layer === layer);
  const sgc = find('seg-grad-cam', bottleneck);
  const randDel = r.random.deletion.map((v) => mean(v));
  const randIns = r.random.insertion.map((v) => mean(v));
  const steps = r.cascade.steps;
  const layerLabel = (name: string) => {
    const l = r.layers.find((x) => x.name === name);
    return l ? `${name} (${l.role}, ${l.shape.join('×')})` : name;
  };

  // ---------- Plots ----------
  const methods = [...new Set(r.conditions.map((c) => c.method))];
  const methodColor = (m: string): Rgb => categorical(methods.indexOf(m));

  // Bias shares per condition and model.
  images['bias-shares.png'] = encodePng(
    barChart({
      title: `Share of positive heatmap mass on the bias texture (M = digit ${r.dataset.biasDigit}, ${r.tiles.length} tiles)`,
      rows: r.conditions.map((c) => ({ label: `${c.method} @ ${c.layer}`, values: c.shares.map((s) => mean(s)) })),
      series: labels.map((l, i) => ({ label: `${l} model`, color: categorical(i) })),
      xLabel: 'mean share of positive mass on the bias texture',
      xRange: [0, 1],
      refLines: [{ value: chance, label: `area of the bias texture ${fmt(chance, 2)}`, color: [200, 0, 0] }],
      width: 1000,
    }),
  );

  // Layer sweep: AUROC and curve AUCs per method and layer.
  const layerCols = [...r.layers.map((l) => l.name), 'input'].filter((l) => r.conditions.some((c) => c.layer === l));
  const sweepRows = (value: (c: ConditionResult) => number) =>
    methods.map((m) => ({
      label: m,
      values: layerCols.map((l) => {
        const c = find(m, l);
        return c ? value(c) : Number.NaN;
      }),
    }));
  const layerSeries = layerCols.map((l, i) => ({
    label: l === 'input' ? 'input (attribution)' : `${l} (${r.layers.find((x) => x.name === l)?.role})`,
    color: categorical(i),
  }));
  const sweep: RgbaImage[] = [];
  if (two) {
    sweep.push(
      barChart({
        title: 'Bias detection AUROC (biased vs unbiased model)',
        rows: sweepRows((c) => c.auroc),
        series: layerSeries,
        xLabel: 'AUROC (0.5 = no separation)',
        xRange: [0, 1],
        refLines: [{ value: 0.5, label: 'chance 0.5', color: [200, 0, 0] }],
        width: 760,
      }),
    );
  }
  if (r.options.curveTiles > 0) {
    // Curve AUCs of the first model per method and layer, against the random order.
    const aucChart = (which: 'deletion' | 'insertion', title: string, random: number) =>
      barChart({
        title: `${title} AUC, ${labels[0]} model (${which === 'deletion' ? 'lower' : 'higher'} = more faithful)`,
        rows: sweepRows((c) => mean(c[which][0])),
        series: layerSeries,
        xLabel: 'mean P(class in M) along the curve',
        xRange: [0, Math.max(0.05, ...r.conditions.map((c) => mean(c[which][0])).filter(Number.isFinite), random) * 1.1],
        refLines: [{ value: random, label: `random order ${fmt(random, 3)}`, color: [200, 0, 0] }],
        width: 760,
      });
    sweep.push(aucChart('deletion', 'Deletion', randDel[0]), aucChart('insertion', 'Insertion', randIns[0]));
  }
  if (sweep.length > 0)
    images['layer-sweep.png'] = encodePng(sweep.length > 2 ? vstack([hstack(sweep.slice(0, 2), 24), sweep[2]], 24) : hstack(sweep, 24));

  // Deletion / insertion curves (first model): every method at the bottleneck, input attributions, random.
  if (r.options.curveTiles > 0) {
    const xs = Array.from({ length: r.options.steps + 1 }, (_, j) => j / r.options.steps);
    const curveSeries = (which: 'deletionCurve' | 'insertionCurve', mi: number): Series[] => [
      ...r.conditions
        .filter((c) => c.layer === bottleneck || c.layer === 'input')
        .map((c) => ({
          label: `${c.method}${c.layer === 'input' ? '' : ' @ bn'}`,
          color: methodColor(c.method),
          xs,
          ys: c[which][mi],
          dash: c.layer === 'input',
        })),
      { label: 'random order', color: BLACK, xs, ys: r.random[which][mi], thickness: 3 },
    ];
    const charts: RgbaImage[] = [];
    for (let mi = 0; mi < r.models.length; mi++) {
      charts.push(
        hstack(
          [
            lineChart({
              title: `Deletion, ${labels[mi]} model`,
              xLabel: 'fraction of pixels deleted',
              yLabel: 'P(class) in M',
              series: curveSeries('deletionCurve', mi),
              xRange: [0, 1],
              yRange: [0, 1],
              legend: false,
              width: 560,
            }),
            lineChart({
              title: `Insertion, ${labels[mi]} model`,
              xLabel: 'fraction of pixels inserted',
              yLabel: 'P(class) in M',
              series: curveSeries('insertionCurve', mi),
              xRange: [0, 1],
              yRange: [0, 1],
            }),
          ],
          8,
        ),
      );
    }
    images['deletion-insertion.png'] = encodePng(vstack(charts, 24));
  }

  // Sanity checks: one chart per layer (and one for input attributions).
  if (steps.length > 0 && r.options.sanityTiles > 0) {
    const xs = Array.from({ length: steps.length + 1 }, (_, j) => j);
    const xTicks = [{ value: 0, label: 'original' }, ...steps.map((s, j) => ({ value: j + 1, label: s.name }))];
    const charts = layerCols.map((l) =>
      lineChart({
        title: l === 'input' ? 'Input attributions' : `CAM methods at ${l}`,
        xLabel: 'randomised from the output down to',
        yLabel: 'Spearman vs original',
        series: r.conditions
          .filter((c) => c.layer === l)
          .map((c) => ({ label: c.method, color: methodColor(c.method), xs, ys: [1, ...sanityMeans(c)], markers: true })),
        xTicks,
        yRange: [-0.5, 1],
        width: 820,
        height: 470,
      }),
    );
    const rows: RgbaImage[] = [];
    for (let i = 0; i < charts.length; i += 2) rows.push(hstack(charts.slice(i, i + 2), 16));
    images['sanity.png'] = encodePng(vstack(rows, 16));
  }

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

  // Example heatmaps.
  if (r.example) {
    const ex = r.example;
    const rows: RgbaImage[] = [];
    const keys = r.conditions
      .filter((c) => c.method === 'seg-grad-cam' || c.layer === bottleneck || c.layer === 'input')
      .map((c) => ({ key: conditionKey(c.method, c.layer), c }));
    for (const label of labels) {
      const maps = ex.heatmaps[label] ?? {};
      const contour = contourMask(ex.region, ex.image.width, ex.image.height, 1);
      const img = drawContour({ ...ex.image, data: ex.image.data.slice() }, contour, { color: [255, 255, 255] });
      const panels: Panel[] = [{ image: img, title: `${label} model: tile ${ex.tile}, M outlined` }];
      for (const { key, c } of keys) {
        const h = maps[key];
        if (!h) continue;
        panels.push({
          image: overlayHeatmap(ex.image, h, { colormap: 'turbo', opacity: 0.6 }),
          title: `${c.method} ${c.layer === 'input' ? '(input)' : c.layer}`,
        });
      }
      rows.push(renderFigure(panels, { minPanelSize: 128, textScale: 1 }));
    }
    images['examples.png'] = encodePng(vstack(rows, 0));
  }

  // ---------- Markdown ----------
  md.push('# Seg-Grad-CAM evaluation report', '');
  md.push(
    `Generated by \`seg-grad-cam evaluate\` on ${r.tiles.length} held-out TextureMNIST tiles (seed ${r.options.seed}); ` +
      `protocol: docs/evaluation/protocol.md. Every number except the timing columns is reproducible from the command below.`,
    '',
  );
  if (r.models.some((m) => m.checkpoint)) {
    md.push(
      `> **Note:** ${r.models
        .filter((m) => m.checkpoint)
        .map((m) => `the ${m.label} model is a training checkpoint (${m.iouNote})`)
        .join('; ')} — the final model was not available when this report was generated.`,
      '',
    );
  }

  // Summary.
  md.push('## Summary', '');
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
  if (two && sgc) {
    const byAuroc = [...r.conditions].filter((c) => Number.isFinite(c.auroc)).sort((a, b) => b.auroc - a.auroc);
    const sgcLayers = r.conditions.filter((c) => c.method === 'seg-grad-cam');
    md.push(
      `* **Bias detection** (M = the pixels of digit ${r.dataset.biasDigit}, class ${r.dataset.biasClass}, on '${r.dataset.biasTexture}' tiles; share of positive heatmap mass on the bias texture; a uniform map would give ${fmt(chance, 3)}): ` +
        `Seg-Grad-CAM at the bottleneck (${bottleneck}) gives **${fmt(mean(sgc.shares[0]))}** for the biased model vs **${fmt(mean(sgc.shares[1]))}** for the unbiased one, **AUROC ${fmt(sgc.auroc)}**. ` +
        `Seg-Grad-CAM at the other layers: ${sgcLayers
          .filter((c) => c !== sgc)
          .map((c) => `${c.layer} AUROC ${fmt(c.auroc)} (${fmt(mean(c.shares[0]))} vs ${fmt(mean(c.shares[1]))})`)
          .join('; ')}. ` +
        `Highest AUROCs: ${byAuroc
          .slice(0, 4)
          .map((c) => `${c.method} @ ${c.layer} ${fmt(c.auroc)}`)
          .join(', ')}; lowest: ${byAuroc
          .slice(-2)
          .map((c) => `${c.method} @ ${c.layer} ${fmt(c.auroc)}`)
          .join(', ')}.`,
    );
  }
  if (r.options.curveTiles > 0 && sgc) {
    const bnConds = r.conditions.filter((c) => c.layer === bottleneck || c.layer === 'input');
    const bestDel = [...r.conditions].sort((a, b) => mean(a.deletion[0]) - mean(b.deletion[0]))[0];
    const bestIns = [...r.conditions].sort((a, b) => mean(b.insertion[0]) - mean(a.insertion[0]))[0];
    const beatDel = bnConds.filter((c) => mean(c.deletion[0]) < randDel[0]).length;
    const beatIns = bnConds.filter((c) => mean(c.insertion[0]) > randIns[0]).length;
    md.push(
      `* **Deletion / insertion** (${labels[0]} model, ${r.options.curveTiles} tiles, ${r.options.steps} steps, S = mean P(class) over M; deletion to ${String(r.options.deletionBaseline)}, insertion from ${String(r.options.insertionBaseline)}): ` +
        `Seg-Grad-CAM at the bottleneck: deletion AUC **${fmt(mean(sgc.deletion[0]))}** vs random **${fmt(randDel[0])}** (lower is better), insertion AUC **${fmt(mean(sgc.insertion[0]))}** vs random **${fmt(randIns[0])}** (higher is better). ` +
        `Best deletion: ${bestDel.method} @ ${bestDel.layer} ${fmt(mean(bestDel.deletion[0]))}; best insertion: ${bestIns.method} @ ${bestIns.layer} ${fmt(mean(bestIns.insertion[0]))}. ` +
        `At the bottleneck and input, ${beatDel}/${bnConds.length} methods beat random on deletion and ${beatIns}/${bnConds.length} on insertion.`,
    );
  }
  if (steps.length > 0 && r.options.sanityTiles > 0 && sgc) {
    const s = sanityMeans(sgc);
    const fails = r.conditions.filter((c) => {
      const m = sanityMeans(c);
      return m[m.length - 1] > 0.5;
    });
    md.push(
      `* **Sanity checks** (cascading randomisation of the ${r.cascade.model} model, ${r.options.sanityTiles} tiles, Spearman rank correlation with the original heatmap): ` +
        `Seg-Grad-CAM at the bottleneck falls to **${fmt(s[0], 2)}** after randomising ${steps[0].name}, **${fmt(s[Math.min(steps.length - 1, 5)], 2)}** after ${steps[Math.min(steps.length - 1, 5)].name} and **${fmt(s[s.length - 1], 2)}** with every layer randomised. ` +
        (fails.length > 0
          ? `Still above 0.5 with every layer randomised (their maps follow the image or the region, not the weights): ${fails.map((c) => `${c.method} @ ${c.layer} ${fmt(sanityMeans(c).slice(-1)[0], 2)}`).join(', ')}.`
          : 'No method stays above 0.5 with every layer randomised.'),
    );
  }
  if (r.alpha.length > 0) {
    md.push(
      `* **α across locations** (Seg-Grad-CAM at the bottleneck, single-pixel regions on digit ${r.dataset.biasDigit}): mean cosine similarity within a digit instance vs between instances: ${r.alpha
        .map((a) => `${a.model} ${fmt(a.withinInstance, 2)} vs ${fmt(a.betweenInstances, 2)}`)
        .join(
          '; ',
        )}; the first two principal components explain ${r.alpha.map((a) => `${fmt(100 * (a.pca.explained[0] ?? NaN), 0)}% + ${fmt(100 * (a.pca.explained[1] ?? NaN), 0)}% (${a.model})`).join(', ')}.`,
    );
  }
  md.push(
    '',
    "**Cost** per explanation (after the image's one shared forward pass; median wall time over all tiles and models — timing, not reproducible):",
    '',
  );
  md.push(...costTable(r));
  md.push('');

  // Setup.
  md.push('## Setup', '');
  md.push('| | |', '|---|---|');
  r.models.forEach((m) =>
    md.push(
      `| ${m.label} model | \`${show(m.path)}\` — ${m.params != null ? `${(m.params / 1000).toFixed(0)} k parameters, ` : ''}${m.meanIou != null ? `mean IoU **${fmt(m.meanIou)}**` : 'mean IoU n/a'} (${m.iouNote})${m.training ? `; trained with \`${m.training}\`` : ''} |`,
    ),
  );
  md.push(
    `| tiles | ${r.tiles.length} held-out tiles (split 'heldout', dataset seed ${r.dataset.seed}, ${r.dataset.size}×${r.dataset.size}) that contain digit ${r.dataset.biasDigit} with ≥ 1 % of the tile, generated with bias strength 1 for every model (identical inputs), the first ${r.tiles.length} such from index ${r.dataset.tileOffset} (${r.dataset.scanned} tiles scanned); bias texture '${r.dataset.biasTexture}' covers ${fmt(100 * chance, 1)} % of a tile on average |`,
  );
  md.push(
    `| region M, class | the ground-truth pixels of digit ${r.dataset.biasDigit} (class ${r.dataset.biasClass}); S = Σ_M logits for the heatmaps |`,
  );
  md.push(`| layers | ${r.layers.map((l) => layerLabel(l.name)).join('; ')} |`);
  md.push(
    `| methods | ${r.options.methods.join(', ')}; options: ${
      Object.entries(r.options.methodOptions)
        .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
        .join(', ') || 'defaults'
    } |`,
  );
  md.push(
    `| curves | first ${r.options.curveTiles} tiles, ${r.options.steps} steps, ${r.options.randomOrders} random orders per tile; ties in a heatmap broken by a seeded permutation |`,
  );
  md.push(
    `| sanity | first ${r.options.sanityTiles} tiles; cascade over ${steps.length} blocks of the ${r.cascade.model} model${r.cascade.note ? ` (${r.cascade.note})` : ''} |`,
  );
  md.push(`| α | first ${r.options.alphaTiles} tiles × ${r.options.alphaPixels} pixels |`);
  md.push(`| seed | ${r.options.seed} (tiles, tie-breaking, random orders, weight randomisation, PCA start) |`);
  md.push(
    `| machine | ${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.memoryGb} GB, ${r.machine.platform}; Node ${r.machine.node}, TF.js ${r.machine.tfjs}, backend ${r.machine.backend} (single-threaded) |`,
  );
  md.push(
    `| wall time | ${(r.timing.wallSeconds / 60).toFixed(1)} min (${Object.entries(r.timing.phases)
      .map(([k, v]) => `${k} ${(v / 60).toFixed(1)} min`)
      .join(', ')}) — timing |`,
  );
  md.push('');
  if (ctx.command) md.push('Reproduce:', '', '```sh', ctx.command, '```', '');
  if (images['examples.png'])
    md.push(
      'Example tile: the input with M outlined, then heatmaps (Seg-Grad-CAM at every layer, the other CAM methods at the bottleneck, input attributions).',
      '',
      '![example heatmaps](examples.png)',
      '',
    );

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

  // 1. Bias detection.
  md.push('## 1. Bias detection', '');
  md.push(
    `For each tile, M = the pixels of digit ${r.dataset.biasDigit}; the score is the share of the heatmap's positive mass that lies on the bias texture (the background pixels of the '${r.dataset.biasTexture}' tile). ` +
      `The biased model only ever saw digit ${r.dataset.biasDigit} on '${r.dataset.biasTexture}'; the unbiased one saw '${r.dataset.biasTexture}' under every digit. A method that exposes the shortcut gives higher shares for the biased model: ` +
      `the AUROC (Mann–Whitney) separates the biased model's per-tile shares from the unbiased model's (1 = always higher, 0.5 = no difference). ` +
      `Empty heatmaps (no positive mass) have no share and are left out (counted in the last column).`,
    '',
  );
  const biasHead = two
    ? `| method | layer | share, ${labels[0]} | share, ${labels[1]} | AUROC | empty (${labels.join('/')}) |`
    : `| method | layer | share, ${labels[0]} | empty |`;
  md.push(biasHead, two ? '|---|---|---:|---:|---:|---:|' : '|---|---|---:|---:|');
  for (const c of r.conditions) {
    const best =
      two && Number.isFinite(c.auroc) && c.auroc === Math.max(...r.conditions.filter((x) => x.method === c.method).map((x) => x.auroc));
    md.push(
      two
        ? `| ${c.method} | ${c.layer} | ${pm(c.shares[0])} | ${pm(c.shares[1])} | ${best && r.conditions.filter((x) => x.method === c.method).length > 1 ? `**${fmt(c.auroc)}**` : fmt(c.auroc)} | ${c.shares.map(nanCount).join('/')} |`
        : `| ${c.method} | ${c.layer} | ${pm(c.shares[0])} | ${nanCount(c.shares[0])} |`,
    );
  }
  md.push(
    '',
    `Chance level (the bias texture's area): ${fmt(chance)}. Bold: the method's best layer.`,
    '',
    '![bias shares](bias-shares.png)',
    '',
  );

  // 2. Deletion / insertion.
  if (r.options.curveTiles > 0) {
    md.push('## 2. Deletion and insertion', '');
    md.push(
      `Pixels are deleted (set to the ${String(r.options.deletionBaseline)} baseline) or inserted (into the ${String(r.options.insertionBaseline)} image) in the order of the heatmap, in ${r.options.steps} equal steps; ` +
        `S = the mean softmax probability of class ${r.dataset.biasClass} over M, so the normalised area under the curve lies in [0, 1]. Lower deletion AUC and higher insertion AUC = more faithful. ` +
        `Random: ${r.options.randomOrders} seeded random orders per tile.`,
      '',
    );
    const head = ['method', 'layer', ...r.models.flatMap((m) => [`deletion, ${m.label}`, `insertion, ${m.label}`])];
    md.push(`| ${head.join(' | ')} |`, `|---|---|${r.models.map(() => '---:|---:|').join('')}`);
    md.push(`| *random order* | | ${r.models.map((_, mi) => `*${fmt(randDel[mi])}* | *${fmt(randIns[mi])}*`).join(' | ')} |`);
    for (const c of r.conditions) {
      md.push(
        `| ${c.method} | ${c.layer} | ${r.models
          .map((_, mi) => {
            const d = mean(c.deletion[mi]);
            const i = mean(c.insertion[mi]);
            return `${d < randDel[mi] ? `**${fmt(d)}**` : fmt(d)} | ${i > randIns[mi] ? `**${fmt(i)}**` : fmt(i)}`;
          })
          .join(' | ')} |`,
      );
    }
    md.push('', 'Bold: better than the random order.', '', '![deletion and insertion curves](deletion-insertion.png)', '');
  }

  // 3. Sanity checks.
  if (steps.length > 0 && r.options.sanityTiles > 0) {
    md.push('## 3. Sanity checks: cascading randomisation', '');
    md.push(
      `The ${r.cascade.model} model's blocks are re-initialised from the output down (each trainable weight tensor re-drawn from a seeded normal with its own mean and standard deviation; batch-norm moving statistics kept), cumulatively; ` +
        `after each step every method explains the same tiles again. Cell = mean Spearman rank correlation with the original heatmap over ${r.options.sanityTiles} tiles ` +
        `(an empty randomised map counts as 0; the number of empty maps in brackets). A faithful method's correlation must fall once the layers it depends on are randomised.`,
      '',
    );
    md.push(`| method | layer | ${steps.map((s) => s.name).join(' | ')} |`, `|---|---|${steps.map(() => '---:|').join('')}`);
    for (const c of r.conditions) {
      const m = sanityMeans(c);
      md.push(
        `| ${c.method} | ${c.layer} | ${m.map((v, j) => `${fmt(v, 2)}${c.sanityEmpty[j] ? ` (${c.sanityEmpty[j]})` : ''}`).join(' | ')} |`,
      );
    }
    md.push('', `Blocks: ${steps.map((s) => `${s.name} = ${s.layers.join(', ')}`).join('; ')}.`, '', '![sanity checks](sanity.png)', '');
  }

  // 4. Layer sweep.
  md.push('## 4. Layer sweep', '');
  md.push(
    `The paper's claim is that the bottleneck is the most informative layer of a U-Net. Per method, the metrics at ${r.layers.map((l) => `${l.name} (${l.role})`).join(' · ')}; best layer in bold.`,
    '',
  );
  const camMethods = methods.filter((m) => r.conditions.some((c) => c.method === m && c.layer !== 'input'));
  const cell = (m: string, value: (c: ConditionResult) => number, better: 'high' | 'low', digits = 3) => {
    const vals = r.layers.map((l) => {
      const c = find(m, l.name);
      return c ? value(c) : Number.NaN;
    });
    const fin = vals.filter(Number.isFinite);
    const best = fin.length > 1 ? (better === 'high' ? Math.max(...fin) : Math.min(...fin)) : Number.NaN;
    return vals.map((v) => (v === best ? `**${fmt(v, digits)}**` : fmt(v, digits))).join(' · ');
  };
  const sweepCols: Array<[string, (c: ConditionResult) => number, 'high' | 'low', number]> = [];
  if (two) sweepCols.push(['bias AUROC', (c) => c.auroc, 'high', 2]);
  if (two) sweepCols.push([`share ${labels[0]} − ${labels[1]}`, (c) => mean(c.shares[0]) - mean(c.shares[1]), 'high', 3]);
  if (r.options.curveTiles > 0) {
    sweepCols.push([`deletion AUC (${labels[0]})`, (c) => mean(c.deletion[0]), 'low', 3]);
    sweepCols.push([`insertion AUC (${labels[0]})`, (c) => mean(c.insertion[0]), 'high', 3]);
  }
  if (steps.length > 0 && r.options.sanityTiles > 0)
    sweepCols.push([`Spearman after ${steps[0].name}`, (c) => sanityMeans(c)[0], 'low', 2]);
  md.push(`| method | ${sweepCols.map((c) => c[0]).join(' | ')} |`, `|---|${sweepCols.map(() => '---|').join('')}`);
  for (const m of camMethods) md.push(`| ${m} | ${sweepCols.map(([, f, b, d]) => cell(m, f, b, d)).join(' | ')} |`);
  md.push('');
  if (images['layer-sweep.png']) md.push('![layer sweep](layer-sweep.png)', '');

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

  // 6. Cost.
  md.push('## 6. Cost', '');
  md.push(
    'Model passes per explanation, counted by instrumenting the adapter (a batched call counts one pass per image; a layer gradient re-runs only the layers downstream of the layer, then back-propagates, and counts as one backward pass), ' +
      "and the median wall time per explanation over every tile and model. The image's forward pass is shared by all methods and not counted.",
    '',
  );
  md.push(...costTable(r), '');

  md.push('## Notes', '');
  if (r.options.curveTiles > 0) {
    const rc = r.random.deletionCurve[0];
    md.push(
      `* Random deletion scatters ${String(r.options.deletionBaseline)} pixels over the texture: with 1/${r.options.steps} of the pixels deleted at random the ${labels[0]} model's P(class) in M already falls from ${fmt(rc[0])} to ${fmt(rc[1])}. ` +
        'Deleting in heatmap order removes contiguous regions and disturbs the model less, so the random order is a strong deletion baseline here; insertion (from the blurred image) separates the methods more clearly.',
    );
  }
  if (r.alpha.length > 0 && steps.length > 0) {
    md.push(
      `* The cascade re-draws each block once (one seed). Seg-Grad-CAM's α at the bottleneck is nearly one-dimensional (PC1 explains ${fmt(100 * (r.alpha[0].pca.explained[0] ?? NaN), 0)} % of its variance, §5): randomising only the logits mostly rescales α, and whether the map survives that first step depends on the sign of the one random draw.`,
    );
  }
  if (r.models.some((m) => m.training?.includes('--init-from'))) {
    md.push(
      `* ${r.models
        .filter((m) => m.training?.includes('--init-from'))
        .map((m) => `The ${m.label} model was initialised from another checkpoint (\`--init-from\` in its training command above)`)
        .join('; ')}; it may keep some of that model's features.`,
    );
  }
  md.push(
    '* The bias texture fills the whole background of the evaluated tiles, so even a uniform heatmap puts most of its mass there; the per-tile comparison of the two models (same tiles) is what the AUROC measures.',
    '* Heatmaps of CAM methods at coarse layers are upsampled (bilinear) to the tile before any metric; their many ties are ordered by a seeded permutation in the curves.',
    '* Spearman correlations use tie-averaged ranks over all pixels of the image-sized heatmaps.',
    '* results.json holds every number of this report (per tile), including the timings.',
    '',
  );

  const { example: _example, ...serialisable } = r;
  void _example;
  return {
    markdown: md.join('\n'),
    images,
    json: JSON.stringify(serialisable, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1) + '\n',
  };
}

/** A distance colour (viridis, t in [0, 1]). */
const colorAt = (t: number): Rgb => colormap('viridis', t);

function costTable(r: EvaluationResults): string[] {
  const layerCols = [...r.layers.map((l) => l.name)];
  const methods = [...new Set(r.conditions.map((c) => c.method))];
  const out = [`| method | forward passes | backward passes | median ms: ${layerCols.join(' · ')} (or input) |`, '|---|---:|---:|---:|'];
  for (const m of methods) {
    const cs = r.conditions.filter((c) => c.method === m);
    const fw = [...new Set(cs.map((c) => c.forward))];
    const bw = [...new Set(cs.map((c) => c.backward))];
    const ms =
      cs[0].layer === 'input'
        ? fmt(median(cs[0].ms), 0)
        : layerCols.map((l) => fmt(median(cs.find((c) => c.layer === l)?.ms ?? []), 0)).join(' · ');
    out.push(`| ${m} | ${fw.map((v) => fmt(v, 0)).join(' / ')} | ${bw.map((v) => fmt(v, 0)).join(' / ')} | ${ms} |`);
  }
  return out;
}
