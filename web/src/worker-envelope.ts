/** The envelopes both pages' worker protocols travel in (./protocol.ts, ./volume/protocol.ts; read by ./worker-client.ts). */

/** Worker → page envelope of a protocol: the reply or error of a request, its progress, or a part of its answer. */
export type WorkerEnvelope<TReply, TProgress, TPartial = never> =
  | { id: number; ok: true; reply: TReply }
  | { id: number; ok: false; error: { message: string; code?: string } }
  | { id: number; progress: TProgress }
  /** A part of the answer that arrives before the end (e.g. one cell of the layer grid). */
  | { id: number; partial: TPartial };

/** Page → worker envelope. */
export interface RequestEnvelope<TRequest> {
  id: number;
  request: TRequest;
}
