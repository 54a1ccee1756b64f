/** The page's side of the worker protocol: one promise per request, progress and partial answers by callback. */
import type { Progress, Reply, Request, WorkerMessage } from './protocol.js';

export class WorkerError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  onProgress?: (p: Progress) => void;
  onPartial?: (r: Reply) => void;
}

export class InferenceWorker {
  private worker: Worker;
  private next = 1;
  private pending = new Map<number, Pending>();

  constructor(private readonly make: () => Worker) {
    this.worker = this.start();
  }

  private start(): Worker {
    const w = this.make();
    w.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const msg = event.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      if ('progress' in msg) p.onProgress?.(msg.progress);
      else if ('partial' in msg) p.onPartial?.(msg.partial);
      else {
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.reply);
        else p.reject(new WorkerError(msg.error.message, msg.error.code));
      }
    };
    w.onerror = (event) => {
      const err = new WorkerError(`the inference worker failed: ${event.message || 'unknown error'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    return w;
  }

  /** Ends the worker (its model, image and backend) and starts a fresh one. */
  restart(): void {
    this.worker.terminate();
    const err = new WorkerError('cancelled: the worker was restarted');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.worker = this.start();
  }

  call(
    request: Request,
    hooks: { onProgress?: (p: Progress) => void; onPartial?: (r: Reply) => void; transfer?: Transferable[] } = {},
  ): Promise<Reply> {
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress: hooks.onProgress, onPartial: hooks.onPartial });
      this.worker.postMessage({ id, request }, hooks.transfer ?? []);
    });
  }
}
