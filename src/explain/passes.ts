import type { ForwardPass, GradientPrime } from '../engine/contract.js';
import type { RgbaImage } from '../image.js';
import type { Prediction } from './types.js';

/** An image's forward pass and its prediction. */
export interface CachedPass {
  pass: ForwardPass;
  prediction: Prediction;
}

/** A cached pass held by one call: the pass stays alive until every holder has released it. */
export interface PassLease extends CachedPass {
  /** Ends this call's use of the pass (idempotent). */
  release(): void;
}

interface Entry {
  image: RgbaImage;
  ready: Promise<CachedPass>;
  /** The pass once `ready` resolved (cleared when it is freed). */
  done?: CachedPass;
  /** Calls holding the pass or waiting for it. */
  users: number;
  /** Whether the cache still points to it (a replaced or released entry is freed when its last user leaves). */
  current: boolean;
}

/**
 * One forward pass per image, cached for the last image and shared by concurrent calls: a call
 * for the image whose pass is running or done waits for that pass instead of starting another.
 * Every call holds the pass it uses (acquire … release); a pass replaced by another image's is
 * freed when its last holder releases it, never under a call still using it.
 */
export class PassCache {
  private current: Entry | null = null;

  /** `run` computes an image's pass (with the first caller's prime); the cache owns what it returns. */
  constructor(private readonly run: (image: RgbaImage, prime?: GradientPrime) => Promise<CachedPass>) {}

  /** Whether this image's pass is cached or on its way (a new call would not start a forward pass). */
  has(image: RgbaImage): boolean {
    return this.current?.image === image;
  }

  /**
   * The image's pass, held until `release()`. `prime` is used only when this call starts the
   * pass. A call that joined a pass whose forward run failed starts its own (the failure may be
   * the starter's own, e.g. its region), so each call gets the error of its own run.
   */
  async acquire(image: RgbaImage, prime?: GradientPrime): Promise<PassLease> {
    for (;;) {
      let entry = this.current;
      const starts = !entry || entry.image !== image;
      if (starts) {
        this.drop();
        entry = this.start(image, prime);
      }
      const e = entry as Entry;
      e.users++;
      let cached: CachedPass;
      try {
        cached = await e.ready;
      } catch (err) {
        e.users--;
        if (starts) throw err;
        continue;
      }
      let released = false;
      return {
        ...cached,
        release: () => {
          if (released) return;
          released = true;
          e.users--;
          this.freeIfUnused(e);
        },
      };
    }
  }

  /** Drops the cached pass: freed now, or when the calls still holding it release it. */
  drop(): void {
    const e = this.current;
    if (!e) return;
    this.current = null;
    e.current = false;
    this.freeIfUnused(e);
  }

  private start(image: RgbaImage, prime?: GradientPrime): Entry {
    const e: Entry = { image, ready: this.run(image, prime), users: 0, current: true };
    this.current = e;
    void e.ready.then(
      (cached) => {
        e.done = cached;
        this.freeIfUnused(e);
      },
      () => {
        // A failed pass is not cached: the next call for this image runs the model again.
        if (this.current === e) this.current = null;
        e.current = false;
      },
    );
    return e;
  }

  private freeIfUnused(e: Entry): void {
    if (e.current || e.users > 0 || !e.done) return;
    const { pass } = e.done;
    e.done = undefined;
    pass.dispose();
  }
}
