/**
 * The volume page's status line, shown as the 2-D page shows its own (web/src/app/status.ts):
 * "what runs — its latest progress (seconds so far)", the spinner while anything runs, a bar when
 * the work is counted (sliding-window patches), and the idle text ("ready", "cancelled", "error")
 * when nothing runs.
 */

interface Task {
  label: string;
  started: number;
  /** The worker's latest progress text, and the share done when it counts patches. */
  phase?: string;
  fraction?: number;
}

export class StatusLine {
  private readonly active = new Map<number, Task>();
  private seq = 0;
  private idleText = 'starting…';

  constructor(private readonly el: { text: HTMLElement; spinner: HTMLElement; progress: HTMLProgressElement }) {
    setInterval(() => this.active.size > 0 && this.render(), 200);
  }

  /** A piece of work starts: it shows until end(), the latest started on top. */
  begin(label: string): { update(phase: string, fraction?: number): void; end(): void } {
    const id = ++this.seq;
    this.active.set(id, { label, started: performance.now() });
    this.render();
    return {
      update: (phase, fraction) => {
        const t = this.active.get(id);
        if (t) Object.assign(t, { phase, fraction });
        this.render();
      },
      end: () => {
        this.active.delete(id);
        this.render();
      },
    };
  }

  /** The text when nothing runs. */
  idle(text: string): void {
    this.idleText = text;
    this.render();
  }

  private render(): void {
    const latest = [...this.active.values()].pop();
    this.el.spinner.hidden = !latest;
    if (!latest) {
      this.el.text.textContent = this.idleText;
      this.el.progress.hidden = true;
      return;
    }
    // "explaining: patch 3 of 8" under the label "explaining" reads "explaining — patch 3 of 8".
    let phase = latest.phase ?? '';
    if (phase === latest.label) phase = '';
    else if (phase.startsWith(`${latest.label}: `)) phase = phase.slice(latest.label.length + 2);
    const secs = (performance.now() - latest.started) / 1000;
    this.el.text.textContent = `${latest.label}${phase ? ` — ${phase}` : ''}${secs >= 0.5 ? ` (${secs.toFixed(1)} s)` : ''}`;
    this.el.progress.hidden = latest.fraction === undefined;
    if (latest.fraction !== undefined) this.el.progress.value = latest.fraction;
  }
}
