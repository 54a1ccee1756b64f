/** The window-grouping rule both engines use for stacked backward runs (src/engine/windows.ts), on hand-computed boxes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boxArea, unionBox, type GridBox } from '../src/engine/contract.js';
import { groupByWindow } from '../src/engine/windows.js';

test('regions share a run when their union costs at most 1.15x the largest; no window groups with no window', () => {
  const a: GridBox = [
    [0, 4],
    [0, 4],
  ]; // area 16
  const b: GridBox = [
    [0, 4],
    [1, 5],
  ]; // union with a: 4x5 = 20 > 1.15 · 16 = 18.4
  const c: GridBox = [
    [0, 4],
    [0, 4],
  ]; // the same as a
  const d: GridBox = [
    [0, 9],
    [0, 9],
  ]; // area 81; union with a: 81 ≤ 1.15 · 81
  const groups = groupByWindow([a, b, undefined, c, undefined, undefined], boxArea, unionBox, 2);
  assert.deepEqual(groups, [
    { members: [0, 3], window: a },
    { members: [1], window: b },
    { members: [2, 4], window: undefined },
    { members: [5], window: undefined },
  ]);
  assert.deepEqual(groupByWindow([a, d], boxArea, unionBox), [{ members: [0, 1], window: d }]);
});
