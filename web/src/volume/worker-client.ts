/** The volume page's side of its worker: one promise per request, progress messages by callback. */
import type { VolumeReply, VolumeRequest, VolumeWorkerMessage } from './protocol.js';

type Progress = Extract<VolumeWorkerMessage, { progress: string }>;

export class VolumeWorkerClient {
  private readonly worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  private next = 1;
  private readonly pending = new Map<number, { resolve(r: VolumeReply): void; reject(e: Error): void }>();
  /** Predictions and questions in flight (what Cancel can stop). */
  private stoppable = 0;

  /** `onProgress` gets every progress message; `onStoppable` the count of predictions and questions in flight when it changes. */
  constructor(
    onProgress: (p: Progress) => void,
    private readonly onStoppable: (n: number) => void,
  ) {
    this.worker.onmessage = (event: MessageEvent<VolumeWorkerMessage>) => {
      const msg = event.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      if ('progress' in msg) return onProgress(msg);
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.reply);
      else p.reject(new Error(msg.error.message));
    };
    this.worker.onerror = (event) => {
      for (const p of this.pending.values()) p.reject(new Error(`the volume worker failed: ${event.message || 'unknown error'}`));
      this.pending.clear();
    };
  }

  call(request: VolumeRequest, transfer: Transferable[] = []): Promise<VolumeReply> {
    const id = this.next++;
    const counted = request.type === 'predict' || request.type === 'explain';
    if (counted) this.count(+1);
    const reply = new Promise<VolumeReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, request }, transfer);
    });
    if (counted) {
      const done = () => this.count(-1);
      void reply.then(done, done);
    }
    return reply;
  }

  private count(delta: number): void {
    this.stoppable += delta;
    this.onStoppable(this.stoppable);
  }
}
