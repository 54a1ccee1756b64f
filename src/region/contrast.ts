import type { Objective, OutputInfo } from '../engine/contract.js';
import { unionBox } from '../engine/contract.js';
import { SegGradCamError } from '../errors.js';
import { classCount } from './objective.js';

/**
 * Contrastive objectives: "what makes M class c rather than c′", S = Σ_M (y^c − β y^{c′}) — every gradient method
 * explains it unchanged, since it is one more linear objective over the output (on logits, or on probabilities).
 */

/**
 * The class an objective scores (regionObjective's layout): for a single sigmoid channel, 1 when its weights are
 * positive and 0 when negative; otherwise the one channel that carries weights. A typed error for an objective
 * that mixes classes (or has no weight).
 */
export function objectiveClass(objective: Objective, output: OutputInfo): number {
  const C = output.channels;
  const w = objective.weights;
  let found = -1;
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) continue;
    const c = C === 1 ? (w[i] > 0 ? 1 : 0) : i % C;
    if (found >= 0 && c !== found) throw new SegGradCamError('the objective scores several classes; a contrast needs one', 'class');
    found = c;
  }
  if (found < 0) throw new SegGradCamError('the objective has no weight (an empty region)', 'region');
  return found;
}

/**
 * The same region weights moved to class `to` (what regionObjective(output, to, M, on) gives for a 0/1 mask M;
 * per-pixel weights are kept). A single sigmoid channel: class 0 is −y (on probabilities 1 − σ(y), hence the offset).
 */
export function objectiveForClass(objective: Objective, output: OutputInfo, to: number): Objective {
  const from = objectiveClass(objective, output);
  checkClass(to, output);
  if (to === from) return objective;
  const C = output.channels;
  const w = objective.weights;
  const weights = new Float32Array(w.length);
  if (C === 1) {
    // S_{1−c} = Σ m_p (1 − s_c(p)) on probabilities, −S_c on logits: the weights negated, the offset Σ|w| − offset.
    let mass = 0;
    for (let i = 0; i < w.length; i++) {
      weights[i] = -w[i];
      mass += Math.abs(w[i]);
    }
    return { ...objective, weights, offset: objective.on === 'probability' ? mass - objective.offset : 0 };
  }
  for (let p = 0; p < w.length / C; p++) weights[p * C + to] = w[p * C + from];
  return { ...objective, weights };
}

/** Σ_i coefficient_i · S_i over objectives on the same output and scale (logits or probabilities); supports are united. */
export function combineObjectives(terms: Array<{ objective: Objective; coefficient: number }>): Objective {
  const on = terms[0].objective.on;
  if (terms.some((t) => t.objective.on !== on))
    throw new SegGradCamError('objectives on logits and on probabilities cannot be combined', 'usage');
  const weights = new Float32Array(terms[0].objective.weights.length);
  let offset = 0;
  for (const { objective, coefficient } of terms) {
    for (let i = 0; i < weights.length; i++) weights[i] += coefficient * objective.weights[i];
    offset += coefficient * objective.offset;
  }
  const boxes = terms.map((t) => t.objective.support);
  const support = boxes.every((b) => b !== undefined) ? boxes.reduce((a, b) => unionBox(a, b)) : undefined;
  return support ? { weights, on, offset, support } : { weights, on, offset };
}

/**
 * The contrastive objective S_c − β S_{c′} of an objective S_c (β = `weight`, default 1): M's score for its class
 * minus the same region's score for `contrastClass`. A typed error when c′ is c or not a class of the model.
 */
export function contrastObjective(objective: Objective, output: OutputInfo, contrastClass: number, weight = 1): Objective {
  const c = objectiveClass(objective, output);
  checkClass(contrastClass, output);
  if (contrastClass === c) throw new SegGradCamError(`the contrast class ${contrastClass} is the explained class itself`, 'class');
  if (!Number.isFinite(weight)) throw new SegGradCamError(`the contrast weight must be a finite number, got ${weight}`, 'usage');
  return combineObjectives([
    { objective, coefficient: 1 },
    { objective: objectiveForClass(objective, output, contrastClass), coefficient: -weight },
  ]);
}

function checkClass(c: number, output: OutputInfo): void {
  const n = classCount(output);
  if (!Number.isInteger(c) || c < 0 || c >= n)
    throw new SegGradCamError(`class ${c} is out of range: the model has classes 0..${n - 1}`, 'class');
}
