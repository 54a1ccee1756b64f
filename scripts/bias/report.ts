/**
 * The bias study's report (issue 15): `node --import tsx scripts/bias/report.ts [--models models/bias]
 * [--out docs/evaluation] [--tiles 200] [--other-tiles 200] [--test-tiles 10] [--jobs 2] [--gate-only]`
 * studies every committed model (two processes at a time), aggregates per arm and writes
 * OUT/report.md, OUT/bias-results.json (unrounded, per model and tile) and OUT/bias-cbl.png.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findStudyModels } from '../../src/eval/bias-models.js';
import { defaultConditions, STUDY_METHOD_OPTIONS, type ModelStudy, type StudyOptions } from '../../src/eval/bias-study.js';
import { aggregateStudy, studyMarkdown, HOYER } from '../../src/eval/bias-report.js';
import { barChart } from '../../src/eval/plot.js';
import { categorical } from '../../src/eval/canvas.js';
import { encodePng } from '../../src/io/codec.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'models/bias' },
    out: { type: 'string', default: 'docs/evaluation' },
    tiles: { type: 'string', default: '200' },
    'other-tiles': { type: 'string', default: '200' },
    'test-tiles': { type: 'string', default: '10' },
    jobs: { type: 'string', default: '2' },
    'gate-only': { type: 'boolean', default: false },
  },
});
const t0 = performance.now();
const load0 = loadavg()[0];
const entries = await findStudyModels(values.models!);
if (entries.length === 0) throw new Error(`no <arm>-seed<k> models under ${values.models}`);
const options: StudyOptions & { context: boolean } = {
  tiles: Number(values.tiles),
  otherTiles: Number(values['other-tiles']),
  testTiles: Number(values['test-tiles']),
  seed: 0,
  conditions: defaultConditions('bottleneck', 'decoder'),
  methodOptions: STUDY_METHOD_OPTIONS,
  context: !values['gate-only'],
};
const tmp = join(tmpdir(), `bias-study-${process.pid}`);
await mkdir(tmp, { recursive: true });
const script = new URL('./study-model.ts', import.meta.url).pathname;
const results: ModelStudy[] = new Array(entries.length);
let next = 0;
async function worker(): Promise<void> {
  while (next < entries.length) {
    const i = next++;
    const e = entries[i];
    const out = join(tmp, `${e.arm}-seed${e.seed}.json`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, e.dir, e.arm, String(e.seed), out, JSON.stringify(options)], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${e.arm}-seed${e.seed}: exit ${code}`))));
    });
    results[i] = JSON.parse(await readFile(out, 'utf8')) as ModelStudy;
    process.stderr.write(`done ${e.arm}-seed${e.seed} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
}
await Promise.all(Array.from({ length: Math.max(1, Number(values.jobs)) }, () => worker()));
await rm(tmp, { recursive: true, force: true });

const report = aggregateStudy(results);
const seconds = (performance.now() - t0) / 1000;
const command = `node --import tsx scripts/bias/report.ts ${process.argv.slice(2).join(' ')}`.trim();
const host = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${load0.toFixed(1)} at the start`;
await mkdir(values.out!, { recursive: true });
if (report.conditions.length) {
  const arms = report.arms.map((a) => a.arm);
  const png = barChart({
    title: 'Context bias localisation (CBL): share of the salient context on the bias half (chance 0.5)',
    rows: report.conditions.map((c) => ({
      label: c,
      values: arms.map((a) => report.metrics.find((m) => m.arm === a && m.condition === c && m.metric === 'cbl')?.value.estimate ?? NaN),
    })),
    series: arms.map((a, i) => ({ label: a, color: categorical(i) })),
    xLabel: 'CBL (mean over models and tiles)',
    xRange: [0, 1],
    refLines: [
      { value: 0.5, label: 'chance 0.5', color: [120, 120, 120] },
      { value: HOYER.cblGridStrong, label: `Hoyer grid saliency strong ${HOYER.cblGridStrong}`, color: [200, 0, 0] },
    ],
    width: 1000,
  });
  await writeFile(join(values.out!, 'bias-cbl.png'), encodePng(png));
}
const md = studyMarkdown(report, results, {
  command,
  seconds,
  host,
  tiles: options.tiles,
  otherTiles: options.otherTiles,
  testTiles: options.testTiles,
  extra: report.conditions.length ? ['![CBL per method and arm](bias-cbl.png)', ''] : [],
});
await writeFile(join(values.out!, 'report.md'), md);
await writeFile(
  join(values.out!, 'bias-results.json'),
  JSON.stringify({ command, seconds, host, options, report, models: results }, null, 1) + '\n',
);
process.stderr.write(`wrote ${join(values.out!, 'report.md')} in ${(seconds / 60).toFixed(1)} min\n`);
