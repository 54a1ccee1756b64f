/** The status line (what runs, for how long, its progress) and the error banner. */
import type { Progress } from '../protocol.js';
import { el } from './elements.js';
import { hook } from './hook.js';
import { withClassNames } from './state.js';

export const active = new Map<number, { label: string; started: number; progress?: Progress }>();
let activeSeq = 0;
let idleText = 'ready';

export function begin(label: string): { update(p: Progress): void; end(): void } {
  const id = ++activeSeq;
  active.set(id, { label, started: performance.now() });
  renderStatus();
  return {
    update(p: Progress) {
      const a = active.get(id);
      if (a) a.progress = p;
      renderStatus();
    },
    end() {
      active.delete(id);
      renderStatus();
    },
  };
}

/** The status text when nothing runs. */
export function setIdleText(text: string): void {
  idleText = text;
  renderStatus();
}

export function renderStatus(): void {
  const latest = [...active.values()].pop();
  el.spinner.hidden = !latest;
  if (!latest) {
    el.status.textContent = idleText;
    el.progress.hidden = true;
    return;
  }
  const secs = (performance.now() - latest.started) / 1000;
  const phase = latest.progress?.phase ? ` — ${latest.progress.phase}` : '';
  el.status.textContent = `${latest.label}${phase}${secs >= 0.5 ? ` (${secs.toFixed(1)} s)` : ''}`;
  const f = latest.progress?.fraction;
  el.progress.hidden = f === undefined;
  if (f !== undefined) el.progress.value = f;
}
setInterval(() => active.size > 0 && renderStatus(), 200);

export function showError(err: unknown): void {
  const msg = withClassNames(err instanceof Error ? err.message : String(err));
  el.errorText.textContent = msg;
  el.error.hidden = false;
  hook.errors++;
  hook.lastError = msg;
}
export const clearError = () => {
  el.error.hidden = true;
};
