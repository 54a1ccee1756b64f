/**
 * Forward runs of the ONNX adapter: the plain caching pass, the lean pass (one layer's needs),
 * and the primed runs that take a layer's gradient in the same run — with the objective fed, or
 * with what it takes from the prediction found by the graph (./seed.ts). Backward runs on a
 * pass's cache are ./backward-runs.ts.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import type { GradientPrime, Objective, OutputInfo } from '../contract.js';
import { maskBox } from '../../region/objective.js';
import type { GraphAnalysis } from './analysis.js';
import type { BackwardRuns } from './backward-runs.js';
import { weightsCotangent, type Cotangent } from './cotangent.js';
import type { OnnxForwardPass } from './forward-pass.js';
import { COTANGENT, GRADIENT } from './gradient.js';
import type { OnnxAdapterOptions, OrtRuntime } from './options.js';
import { DataType } from './proto.js';
import { SEED_CHOSEN, SEED_CLASS, SEED_MASK, SEED_REGION, seedMatches } from './seed.js';
import type { Compiled, OnnxSessions } from './sessions.js';
import type { Windows } from './window.js';

/** What the runs read of their adapter. */
export interface ForwardRunsModel {
  readonly ort: OrtRuntime;
  readonly analysis: GraphAnalysis;
  readonly inputName: string;
  readonly logitsName: string;
  readonly output: OutputInfo;
  readonly notes: string[];
  resolve(layer: string): string;
}

export class ForwardRuns {
  constructor(
    private readonly ad: ForwardRunsModel,
    private readonly options: OnnxAdapterOptions,
    private readonly sessions: OnnxSessions,
    private readonly backward: BackwardRuns,
    private readonly passFrom: (
      res: InferenceSession.OnnxValueMapType,
      names: string[],
      x: OrtTensor,
      complete: boolean,
    ) => OnnxForwardPass,
  ) {}

  async run(x: OrtTensor, prime?: GradientPrime): Promise<OnnxForwardPass> {
    // With the default cache ('all'), a forward pass asked for one layer's gradient caches only
    // that layer and what its backward part reads (copying out every layer's output cost about
    // as much as the forward run itself); the rest is filled on first use (see OnnxForwardPass).
    const lazy = (this.options.cacheLayers ?? 'all') === 'all';
    if (prime) {
      const t = this.ad.resolve(prime.layer);
      let e: Compiled | null = null;
      try {
        e = this.sessions.entry(t);
      } catch {
        // Not differentiable here: the plain forward pass; the gradient call reports why.
      }
      const objective = prime.objective;
      if (e && objective && objective.on === 'logits') {
        // An objective known before the forward pass (on logits): the forward pass, the cache and
        // the layer's gradient in one ONNX Runtime run (no second run that reads the cache back in).
        const cot = weightsCotangent(objective, this.ad.output);
        const win = this.backward.windowFor(e, cot.support);
        const { session, names, windowInputs } = await this.sessions.primed(e, lazy, !!win);
        const feeds = win ? this.backward.windowInputs([cot], win, windowInputs) : { [COTANGENT]: this.backward.cotangentTensor([cot]) };
        const res = await session.run({ ...feeds, [this.ad.inputName]: x });
        const pass = this.passFrom(res, names, x, !lazy);
        pass.prime(prime.layer, objective, win ? this.backward.unwindow(e, res[GRADIENT], t, win) : (res[GRADIENT].data as Float32Array));
        return pass;
      }
      const seed = prime.seed;
      if (e && !objective && seed && prime.objectiveOf && this.seedsInGraph()) {
        // What the objective takes from the prediction (the class region, or the class of a
        // region) is found by the graph from its own logits: one run (./seed.ts).
        return this.seeded(e, x, lazy, seed, prime.layer, prime.objectiveOf);
      }
      if (e && lazy) {
        const { session, names } = await this.sessions.leanForward(e);
        return this.passFrom(await session.run({ [this.ad.inputName]: x }), names, x, false);
      }
    }
    const { session, names } = await this.sessions.forward();
    return this.passFrom(await session.run({ [this.ad.inputName]: x }), names, x, true);
  }

  /** One primed run whose cotangent the graph builds (./seed.ts); its gradient is kept only if the graph chose the objective's region and class. */
  private async seeded(
    e: Compiled,
    x: OrtTensor,
    lazy: boolean,
    seed: NonNullable<GradientPrime['seed']>,
    layer: string,
    objectiveOf: NonNullable<GradientPrime['objectiveOf']>,
  ): Promise<OnnxForwardPass> {
    const channels = this.ad.output.channels;
    let res: InferenceSession.OnnxValueMapType;
    let names: string[];
    let win: Windows | null = null;
    if ('classRegion' in seed) {
      const primed = await this.sessions.primed(e, lazy, false, 'class-region');
      names = primed.names;
      res = await primed.session.run({
        [this.ad.inputName]: x,
        [SEED_CLASS]: new this.ad.ort.Tensor('int64', BigInt64Array.of(BigInt(seed.classRegion)), [1]),
      });
    } else {
      const region: Cotangent = {
        nhwc: Float32Array.from(seed.region),
        support: maskBox(seed.region, this.ad.output.height, this.ad.output.width),
      };
      win = this.backward.windowFor(e, region.support);
      const primed = await this.sessions.primed(e, lazy, !!win, 'class-of-region');
      names = primed.names;
      const feeds = win
        ? this.backward.windowInputs([region], win, primed.windowInputs, SEED_REGION)
        : { [SEED_REGION]: this.backward.regionTensor(region) };
      res = await primed.session.run({ ...feeds, [this.ad.inputName]: x });
    }
    const pass = this.passFrom(res, names, x, !lazy);
    let found: Objective | undefined;
    try {
      found = objectiveOf(pass.output);
    } catch {
      // No such region (an empty class): the gradient call reports it.
      return pass;
    }
    const [mask, classIndex] =
      'classRegion' in seed
        ? [res[SEED_MASK].data as Uint8Array, seed.classRegion]
        : [seed.region, Number((res[SEED_CHOSEN].data as BigInt64Array)[0])];
    if (seedMatches(found, mask, classIndex, channels)) {
      const t = this.ad.resolve(layer);
      pass.prime(layer, found, win ? this.backward.unwindow(e, res[GRADIENT], t, win) : (res[GRADIENT].data as Float32Array));
    }
    return pass;
  }

  /** Whether a cotangent that depends on the prediction can be built in the graph: float32 map logits of the file itself (its labels come from them). */
  private seedsInGraph(): boolean {
    const d = this.ad.analysis.shape(this.ad.logitsName);
    return this.ad.notes.length === 0 && d.length === 4 && d[0] === 1 && this.ad.analysis.dataType(this.ad.logitsName) === DataType.FLOAT;
  }
}
