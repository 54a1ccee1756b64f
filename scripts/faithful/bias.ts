/**
 * The pooled report of ROAD and the sanity checks on the bias study's models, from the per-model
 * runs of scripts/faithful/bias-run.sh (OUT/models/road-<model>.json, sanity-<model>-s<seed>.json):
 *
 *   node --import tsx scripts/faithful/bias.ts [--run runs/faithful-bias] [--out docs/evaluation]
 *
 * Writes OUT/faithfulness-bias.md, OUT/road-bias.png, OUT/sanity-bias.png and
 * OUT/faithfulness-bias-results.json (unrounded; per model and tile areas and similarities).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RgbaImage } from '../../src/image.js';
import { encodePng } from '../../src/io/codec.js';
import { categorical, hstack, vstack } from '../../src/eval/canvas.js';
import { lineChart } from '../../src/eval/plot.js';
import type { Interval } from '../../src/eval/bootstrap.js';
import { concatRoad, poolRoad, type PooledRoadVariant } from '../../src/eval/protocol/road-models.js';
import type { RoadResult } from '../../src/eval/protocol/road.js';
import type { SanityResult } from '../../src/eval/protocol/sanity-checks.js';
import {
  mergeSeedRuns,
  mergeTileChunks,
  poolSanity,
  tileMeans,
  MEASURES,
  type PooledSanity,
} from '../../src/eval/protocol/sanity-models.js';

const { values: a } = parseArgs({
  options: {
    run: { type: 'string', default: 'runs/faithful-bias' },
    out: { type: 'string', default: 'docs/evaluation' },
    // a suffix for the output names (e.g. 'weak': faithfulness-bias-weak.md, road-bias-weak.png, …)
    tag: { type: 'string', default: '' },
  },
});
const run = a.run!;
const sfx = a.tag ? `-${a.tag}` : '';
const files = readdirSync(join(run, 'models')).filter((f) => f.endsWith('.json'));
const read = (f: string) => JSON.parse(readFileSync(join(run, 'models', f), 'utf8')) as Record<string, unknown>;
const logOf = (name: string): { wall: number; exit: number } | null => {
  try {
    const m = /exit (\d+) wall (\d+) s/.exec(readFileSync(join(run, `${name}.log`), 'utf8'));
    return m ? { exit: Number(m[1]), wall: Number(m[2]) } : null;
  } catch {
    return null;
  }
};
const roadFiles = files.filter((f) => f.startsWith('road-')).sort();
const sanityFiles = files.filter((f) => f.startsWith('sanity-')).sort();
// Jobs write after every chunk of tiles: pool the chunks every job of a protocol has finished (the same tiles).
const commonPrefix = <T>(lists: T[][]): T[][] => {
  const k = Math.min(...lists.map((l) => l.length));
  return lists.map((l) => l.slice(0, k));
};
const roadModels = roadFiles.map((f) => f.replace(/^road-|\.json$/g, ''));
const roadChunks = roadFiles.map((f) => read(f).roadChunks as RoadResult[]);
const roadTilesDone = Object.fromEntries(roadModels.map((m, i) => [m, roadChunks[i].reduce((s, c) => s + c.tiles.length, 0)]));
const roads = roadChunks.length ? commonPrefix(roadChunks).map(concatRoad) : [];
const sanityRuns = sanityFiles.map((f) => ({
  model: /^sanity-(.+)-s\d+\.json$/.exec(f)![1],
  chunks: read(f).sanityChunks as SanityResult[],
}));
const sanityTilesDone = Object.fromEntries(
  sanityFiles.map((f, i) => [f.replace(/\.json$/, ''), sanityRuns[i].chunks.reduce((s, c) => s + c.tiles.length, 0)]),
);
const sanityModels = [...new Set(sanityRuns.map((r) => r.model))].sort();
const sanityCommon = sanityRuns.length ? commonPrefix(sanityRuns.map((r) => r.chunks)) : [];
const sanities = sanityModels.map((m) =>
  mergeSeedRuns(sanityRuns.flatMap((r, i) => (r.model === m ? [mergeTileChunks(sanityCommon[i])] : []))),
);
const boot = { resamples: 2000, level: 0.95, seed: 0 };
const road = roads.length ? poolRoad(roads, boot) : null;
const sanity = sanities.length ? poolSanity(sanities, boot) : null;

const jobs = [...roadFiles, ...sanityFiles].map((f) => {
  const name = f.replace(/\.json$/, '');
  const r = read(f);
  const chunks = ((r.roadChunks ?? r.sanityChunks) as Array<{ seconds: number; tiles: number[] }>) ?? [];
  const seconds = chunks.reduce((s, c) => s + c.seconds, 0);
  return { job: name, seconds, tilesDone: chunks.reduce((s, c) => s + c.tiles.length, 0), options: r.options, log: logOf(name) };
});
const startFile = (p: string) => {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
};
const startedAt = Number(startFile(`${run}.start`)) || Number.NaN;
const runCommand = startFile(join(run, 'command.txt')) || `scripts/faithful/bias-run.sh ${run}`;
const loadAtStart = startFile(`${run}.load`);
const allDone = jobs.every((j) => j.log !== null);
// every job finished: the longest job's wall time (they ran concurrently); else the time from the start to this report
const wallAll = allDone
  ? Math.max(...jobs.map((j) => j.log!.wall))
  : Number.isFinite(startedAt)
    ? Math.round(Date.now() / 1000 - startedAt)
    : Number.NaN;
const host = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, TF.js WASM backend (one thread)`;

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const ci = (i: Interval) => `${f3(i.estimate)} [${f3(i.low)}, ${f3(i.high)}]`;
const md: string[] = [];
md.push(
  `# Faithfulness on the bias study's models${a.tag ? ` (${a.tag} arm)` : ''}: ROAD and the sanity checks (issue 15, parts 5–7)`,
  '',
  'Generated by `scripts/faithful/bias.ts` from the runs of `scripts/faithful/bias-run.sh`; every number below is read from',
  `\`faithfulness-bias${sfx}-results.json\` (unrounded there, 3 decimals here). The protocols themselves are described in`,
  '[faithfulness.md](faithfulness.md).',
  '',
  '**Intervals.** `x [lo, hi]` is the estimate and its 95 % percentile bootstrap interval (2000 resamples), two-level:',
  'the models are resampled with replacement and, independently, the tiles, with the same model and tile draw for every',
  'method and for the random order (paired). With one model (the sanity checks) it is the tile bootstrap. No "±" is used.',
  '',
  '## Setup',
  '',
  `- **Models:** ROAD on ${roadModels.join(', ') || 'none'}; sanity checks on ${sanityModels.join(', ') || 'none'} (models/bias/, 32×32 inputs: the committed models take 32×32 tiles, not 64×64).`,
  "- **Tiles:** the bias study's held-out tiles (index 3 000 000 on, data seed 0, the same as docs/evaluation/report.md): the",
  "  bias digit 3 with the brick texture on one random half of the background. M = the digit's pixels, class = digit 3 (class 4);",
  "  ROAD's context variant removes only background pixels (the digit is never touched). Every model sees the same tiles.",
  `- **ROAD:** ${road ? `${road.tiles} tiles per model, patch ${roads[0].options.patchSize}×${roads[0].options.patchSize} px for every method and for the random order, ${roads[0].options.steps} removal steps, ${roads[0].options.randomOrders} random orders per tile, noisy linear imputation (noise ${roads[0].options.noise}), score S/|M| = mean logit of class 4 over M` : 'not run'}.`,
  `- **Sanity checks:** ${sanity ? `${sanity.tiles} tiles, ${sanity.conditions.length} conditions, seeds ${sanity.seeds.join(', ')}, blocks (output first) ${sanity.blocks.join(', ')}, cascading and independent re-initialisation (every weight from its declared initializer, batch-norm γ = 1, β = 0, moving mean 0, moving variance 1), threshold ${sanity.threshold} on the mean Spearman of |maps|` : 'not run'}.`,
  '- **Methods:** Seg-Grad-CAM at the bottleneck (`bottleneck_relu2`, 4×4) and at the decoder layer (the last at half the',
  '  input size), Grad-CAM++ and HiResCAM at the bottleneck, saliency, gradient × input, Integrated Gradients (16 steps,',
  '  black baseline), and the Sobel edge map of the image (a control that ignores the model).',
  `- **Command:** \`${runCommand}\` (every job at once, each \`nice -n 10\`), then \`node --import tsx scripts/faithful/bias.ts ${process.argv.slice(2).join(' ')}\`.`,
  `- **Wall time:** ${wallAll} s ${allDone ? 'for the whole run (the longest job; all jobs ran concurrently)' : 'from the start of the run to this report (some jobs were stopped at the deadline)'}, on ${host}; load average at the start: ${loadAtStart || 'n/a'}${Number.isFinite(startedAt) ? ` (started ${new Date(startedAt * 1000).toISOString()})` : ''}.`,
  '',
  '| job | tiles finished | wall s (n/a: stopped at the deadline) | protocol s (inside the job) |',
  '|---|---:|---:|---:|',
  ...jobs.map((j) => `| ${j.job} | ${j.tilesDone} | ${j.log?.wall ?? 'n/a'} | ${j.seconds.toFixed(1)} |`),
  '',
);

function roadTable(v: PooledRoadVariant): string[] {
  const rows = [
    `| method | MoRF area (lower = better) | MoRF − random | LeRF area (higher = better) | LeRF − random | LeRF − MoRF | empty maps | MoRF / LeRF per model |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const c of v.conditions)
    rows.push(
      `| ${c.label} | ${ci(c.morf)} | ${ci(c.morfVsRandom)} | ${ci(c.lerf)} | ${ci(c.lerfVsRandom)} | ${ci(c.gap)} | ${c.empty} | ${c.perModel.map((p) => `${f3(p.morf)} / ${f3(p.lerf)}`).join('; ')} |`,
    );
  rows.push(`| random order | ${ci(v.random.area)} | – | ${ci(v.random.area)} | – | 0 | – | ${v.random.perModel.map(f3).join('; ')} |`);
  return rows;
}

function roadChart(v: PooledRoadVariant, order: 'morf' | 'lerf'): RgbaImage {
  const xs = v.fractions;
  return lineChart({
    title: `${v.variant === 'full' ? 'Full' : 'Context only'}: ${order === 'morf' ? 'MoRF' : 'LeRF'}`,
    xLabel: 'fraction of patches removed',
    yLabel: 'S/|M|',
    series: [
      ...v.conditions.map((c, i) => ({
        label: c.label,
        color: categorical(i),
        xs,
        ys: order === 'morf' ? c.meanMorf : c.meanLerf,
        markers: true,
        dash: c.label.startsWith('sobel'),
      })),
      { label: 'random order', color: [0, 0, 0] as [number, number, number], xs, ys: v.random.meanCurve, thickness: 3, dash: true },
    ],
    width: 900,
    height: 460,
  });
}

if (road) {
  md.push('## ROAD (part 5)', '');
  md.push(
    'Areas are under the S/|M| curve over the removed fraction (trapezoid). "− random" is the paired difference to the random',
    'patch order on the same tiles and models: a faithful map has MoRF − random < 0 and LeRF − random > 0, with the interval',
    'excluding 0. Empty maps (all zeros) are removed in the seeded random order and counted per tile and model.',
    '',
  );
  for (const v of road.variants) {
    md.push(`### ${v.variant === 'full' ? 'Every pixel removable' : 'Context only (the digit is never removed)'}`, '', ...roadTable(v), '');
    md.push(
      `**MoRF/LeRF agreement:** Kendall's τ-b between the MoRF ranking and the LeRF ranking of the ${v.conditions.length} conditions (Sobel included): ${ci(v.kendall)}; per model ${v.kendallPerModel.map(f3).join(', ')}.`,
      '',
      `- MoRF ranking (best first): ${v.kendall.morfRanking.join(' > ')}`,
      `- LeRF ranking (best first): ${v.kendall.lerfRanking.join(' > ')}`,
      '',
    );
  }
  md.push(`![ROAD curves: mean over models and tiles](road-bias${sfx}.png)`, '');
  const rows = road.variants.map((v) => hstack([roadChart(v, 'morf'), roadChart(v, 'lerf')], 12));
  writeFileSync(join(a.out!, `road-bias${sfx}.png`), encodePng(vstack(rows, 16)));
}

function sanityChart(s: PooledSanity, mode: 'cascading' | 'independent', measure: 'absSpearman' | 'ssim'): RgbaImage {
  const names = s.blocks;
  const xs = mode === 'cascading' ? Array.from({ length: names.length + 1 }, (_, j) => j) : names.map((_, j) => j + 1);
  const label = measure === 'absSpearman' ? 'Spearman of |maps|' : 'SSIM';
  return lineChart({
    title: `${mode === 'cascading' ? 'Cascading' : 'Independent'}: ${label}`,
    xLabel: mode === 'cascading' ? 're-initialised from the output down to' : 're-initialised block',
    yLabel: `${label} vs trained`,
    series: s.conditions.map((c, i) => ({
      label: c.label,
      color: categorical(i),
      xs,
      ys:
        mode === 'cascading'
          ? [1, ...c.cascading.map((x) => x.similarity[measure].estimate)]
          : c.independent.map((x) => x.similarity[measure].estimate),
      markers: true,
      dash: c.label.startsWith('sobel'),
    })),
    xTicks: [...(mode === 'cascading' ? [{ value: 0, label: 'trained' }] : []), ...names.map((n, j) => ({ value: j + 1, label: n }))],
    yRange: [-1, 1],
    width: 900,
    height: 460,
  });
}

if (sanity) {
  md.push('## Sanity checks (part 6)', '');
  md.push(
    `A method **fails** when its mean Spearman of |maps| stays ≥ ${sanity.threshold} in magnitude (an inverted map, ρ ≤ −${sanity.threshold}, still follows the image) with every block re-initialised (its map follows the image, not the weights), or between the maps of class 3 and of the runner-up class over the same M (logit test). Empty maps are counted apart and never scored. Values are means over the scored (tile, seed) pairs, averaged per tile first. Every method here returns a non-negative map (the CAMs and gradient × input are ReLU'd, saliency is |∂S/∂x|), so the signed and absolute Spearman coincide.`,
    '',
    '| method | verdict (cascade / logit) | empty on trained (tiles) | all blocks re-initialised: Spearman of \\|maps\\| | Spearman (signed) | SSIM | HOG | empty after | logit test: Spearman of \\|maps\\| | logit SSIM |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  const mark = (v: string) => (v === 'fail' ? '**FAIL**' : v);
  for (const c of sanity.conditions) {
    const last = c.cascading[c.cascading.length - 1];
    md.push(
      `| ${c.label} | ${mark(c.verdict.cascading)} / ${mark(c.verdict.logit)} | ${c.emptyOriginal} | ${ci(last.similarity.absSpearman)} | ${ci(last.similarity.spearman)} | ${ci(last.similarity.ssim)} | ${ci(last.similarity.hog)} | ${last.emptyRandomised} | ${c.logit ? ci(c.logit.similarity.absSpearman) : 'n/a'} | ${c.logit ? ci(c.logit.similarity.ssim) : 'n/a'} |`,
    );
  }
  md.push('');
  for (const mode of ['cascading', 'independent'] as const) {
    md.push(
      `### ${mode === 'cascading' ? 'Cascading' : 'Independent'} randomisation: Spearman of |maps| per step (SSIM in brackets; empty re-initialised maps in parentheses)`,
      '',
      `| method | ${sanity.blocks.join(' | ')} |`,
      `|---|${sanity.blocks.map(() => '---:|').join('')}`,
    );
    for (const c of sanity.conditions)
      md.push(
        `| ${c.label} | ${c[mode].map((s) => `${f3(s.similarity.absSpearman.estimate)} [${f3(s.similarity.ssim.estimate)}]${s.emptyRandomised ? ` (${s.emptyRandomised})` : ''}`).join(' | ')} |`,
      );
    md.push('');
  }
  md.push(`![Sanity checks: similarity to the trained model's maps](sanity-bias${sfx}.png)`, '');
  const rows = (['cascading', 'independent'] as const).map((m) =>
    hstack([sanityChart(sanity, m, 'absSpearman'), sanityChart(sanity, m, 'ssim')], 12),
  );
  writeFileSync(join(a.out!, `sanity-bias${sfx}.png`), encodePng(vstack(rows, 16)));
}

const results = {
  command: {
    run: `scripts/faithful/bias-run.sh ${run}`,
    report: `node --import tsx scripts/faithful/bias.ts ${process.argv.slice(2).join(' ')}`.trim(),
  },
  host,
  loadAtStart,
  startedAt: Number.isFinite(startedAt) ? new Date(startedAt * 1000).toISOString() : null,
  wallSeconds: wallAll,
  jobs,
  bootstrap: boot,
  tilesDone: { road: roadTilesDone, sanity: sanityTilesDone },
  road: road && {
    models: roadModels,
    tiles: roads[0].tiles,
    options: roads[0].options,
    pooled: road,
    // per model and tile: areas per condition and the random order's mean area
    perTile: roads.map((r, mi) => ({
      model: roadModels[mi],
      baseline: r.baseline,
      regionSize: r.regionSize,
      variants: r.variants.map((v) => ({
        variant: v.variant,
        random: v.random.tiles.map((t) => t.area),
        conditions: v.conditions.map((c) => ({
          label: c.label,
          morf: c.tiles.map((t) => t.morfArea),
          lerf: c.tiles.map((t) => t.lerfArea),
        })),
      })),
    })),
  },
  sanity: sanity && {
    models: sanityModels,
    tiles: sanities[0].tiles,
    options: sanities[0].options,
    reinit: sanities[0].reinit,
    pooled: sanity,
    // per model and tile (mean over seeds): the similarity with every block re-initialised, and the logit test's
    perTile: sanities.map((s, mi) => ({
      model: sanityModels[mi],
      conditions: s.conditions.map((c) => ({
        label: c.label,
        cascadeLast: Object.fromEntries(MEASURES.map((m) => [m, tileMeans(c.cascading[c.cascading.length - 1], s.tiles, m)])),
        logit: c.logit ? Object.fromEntries(MEASURES.map((m) => [m, tileMeans(c.logit!, s.tiles, m)])) : null,
      })),
    })),
  },
};
writeFileSync(join(a.out!, `faithfulness-bias${sfx}-results.json`), JSON.stringify(results) + '\n');
writeFileSync(join(a.out!, `faithfulness-bias${sfx}.md`), md.join('\n'));
process.stderr.write(`wrote ${join(a.out!, `faithfulness-bias${sfx}.md`)}\n`);
