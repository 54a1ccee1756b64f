// The report's comparison with Hoyer et al. (2019): which conditions they report, and where an
// interval lies against their figure or range (hand-made intervals).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOYER, hoyerComparison, hoyerReference, whereAgainst, type StudyReport } from '../src/eval/bias-report.js';

const iv = (low: number, high: number) => ({ estimate: (low + high) / 2, low, high });

test('whereAgainst: below, above or overlapping a range or a single figure', () => {
  assert.equal(whereAgainst(iv(0.4, 0.44), [0.45, 0.61]), 'below');
  assert.equal(whereAgainst(iv(0.62, 0.7), [0.45, 0.61]), 'above');
  assert.equal(whereAgainst(iv(0.4, 0.45), [0.45, 0.61]), 'overlaps');
  assert.equal(whereAgainst(iv(0.6, 0.7), [0.45, 0.61]), 'overlaps');
  assert.equal(whereAgainst(iv(0.5, 0.94), [0.95, 0.95]), 'below');
  assert.equal(whereAgainst(iv(0.9, 0.97), [0.95, 0.95]), 'overlaps');
});

test('hoyerReference: gradient methods get the range, grid saliency its strong/weak figures, others nothing', () => {
  for (const m of ['saliency', 'smoothgrad', 'integrated-gradients'])
    assert.deepEqual(hoyerReference(`${m} @ input`), { strong: [0.45, 0.61], weak: [0.45, 0.61] });
  assert.deepEqual(hoyerReference('grid-saliency @ input'), { strong: [0.95, 0.95], weak: [0.89, 0.89] });
  assert.equal(hoyerReference('seg-grad-cam @ bottleneck'), undefined);
  assert.equal(hoyerReference('grad-cam++ @ bottleneck'), undefined);
  assert.deepEqual(HOYER.cblGradient, [0.45, 0.61]);
});

test('hoyerComparison: one row per reported condition, our strong and weak CBL beside it', () => {
  const report = {
    arms: [],
    metrics: [
      { arm: 'strong', condition: 'grid-saliency @ input', metric: 'cbl', value: iv(0.8, 0.9) },
      { arm: 'weak', condition: 'grid-saliency @ input', metric: 'cbl', value: iv(0.6, 0.7) },
      { arm: 'strong', condition: 'grid-saliency @ input', metric: 'cbd', value: iv(0.1, 0.2) },
      { arm: 'strong', condition: 'seg-grad-cam @ bottleneck', metric: 'cbl', value: iv(0.5, 0.6) },
    ],
    detection: [],
    spearman: [],
    cbdMatrix: [],
    conditions: ['grid-saliency @ input', 'seg-grad-cam @ bottleneck'],
  } as unknown as StudyReport;
  const rows = hoyerComparison(report);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].condition, 'grid-saliency @ input');
  assert.deepEqual(rows[0].ours.strong, iv(0.8, 0.9));
  assert.deepEqual(rows[0].ours.weak, iv(0.6, 0.7));
  assert.deepEqual(rows[0].strong, [0.95, 0.95]);
});
