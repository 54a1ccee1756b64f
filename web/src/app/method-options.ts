/**
 * The method options a method does not have are disabled with the reason on hover, instead of answering with an
 * error: the negative checkbox for methods without a negative map, the contrast list ("rather than") for methods whose
 * map does not depend on the class. A disabled option is also cleared, so the request and the URL never carry it.
 */
import { el } from './elements.js';
import { state } from './state.js';

const titles = new WeakMap<HTMLElement, string>();

/** Disables (with `reason` as the hover text of the control and its label) or enables a control, keeping its own title. */
function setDisabled(control: HTMLInputElement | HTMLSelectElement, reason: string | null): void {
  const label = control.closest('label') ?? control;
  if (!titles.has(label)) titles.set(label, label.title);
  control.disabled = reason !== null;
  control.title = reason ?? '';
  label.title = reason ?? (titles.get(label) as string);
  label.classList.toggle('unavailable', reason !== null);
}

export function syncMethodOptions(method: string): void {
  const negative = state.negativeMethods.length === 0 || state.negativeMethods.includes(method);
  if (!negative) el.negativeToggle.checked = false;
  setDisabled(
    el.negativeToggle,
    negative ? null : `${method} has no negative map (ReLU(−Σ …)); methods with one: ${state.negativeMethods.join(', ')}`,
  );
  const classFree = state.classFreeMethods.includes(method);
  if (classFree) el.contrastSelect.value = 'none';
  setDisabled(el.contrastSelect, classFree ? `${method}'s map does not depend on the class: a contrast class would change nothing` : null);
}
