/**
 * The page's side of a worker protocol, for both pages (the 2-D page's inference worker and the
 * volume page's): one promise per request (ids matched to replies), progress and partial answers by
 * callback, every pending request rejected when the worker fails or is restarted. Typed over the
 * protocol's request, reply, progress and partial-answer messages.
 */
import type { Progress, Reply, Request } from './protocol.js';
import type { RequestEnvelope, WorkerEnvelope } from './worker-envelope.js';

export class WorkerError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** What a call may watch or hand over. */
export interface CallHooks<TProgress, TPartial> {
  onProgress?: (p: TProgress) => void;
  onPartial?: (r: TPartial) => void;
  transfer?: Transferable[];
}

interface Pending<TReply, TProgress, TPartial> {
  resolve(reply: TReply): void;
  reject(err: Error): void;
  hooks: CallHooks<TProgress, TPartial>;
}

export class WorkerClient<TRequest, TReply, TProgress, TPartial = never> {
  private worker: Worker;
  private next = 1;
  private pending = new Map<number, Pending<TReply, TProgress, TPartial>>();

  /** `make` starts the worker (again after restart()); `name` says which worker failed in errors. */
  constructor(
    private readonly make: () => Worker,
    private readonly name = 'the worker',
  ) {
    this.worker = this.start();
  }

  private start(): Worker {
    const w = this.make();
    w.onmessage = (event: MessageEvent<WorkerEnvelope<TReply, TProgress, TPartial>>) => {
      const msg = event.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      if ('progress' in msg) p.hooks.onProgress?.(msg.progress);
      else if ('partial' in msg) p.hooks.onPartial?.(msg.partial);
      else {
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.reply);
        else p.reject(new WorkerError(msg.error.message, msg.error.code));
      }
    };
    w.onerror = (event) => this.rejectAll(new WorkerError(`${this.name} failed: ${event.message || 'unknown error'}`));
    return w;
  }

  private rejectAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Ends the worker (its model, data and backend) and starts a fresh one. */
  restart(): void {
    this.worker.terminate();
    this.rejectAll(new WorkerError('cancelled: the worker was restarted'));
    this.worker = this.start();
  }

  call(request: TRequest, hooks: CallHooks<TProgress, TPartial> = {}): Promise<TReply> {
    const id = this.next++;
    return new Promise<TReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, hooks });
      const envelope: RequestEnvelope<TRequest> = { id, request };
      this.worker.postMessage(envelope, hooks.transfer ?? []);
    });
  }
}

/** The 2-D page's inference worker (web/src/worker.ts). */
export class InferenceWorker extends WorkerClient<Request, Reply, Progress, Reply> {
  constructor(make: () => Worker) {
    super(make, 'the inference worker');
  }
}
