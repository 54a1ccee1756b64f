/** Files dropped anywhere on the page go to `open`; `hint` shows while files are dragged over it. */
export function acceptDroppedFiles(hint: HTMLElement, open: (files: File[]) => void): void {
  let depth = 0;
  window.addEventListener('dragenter', (ev) => {
    if (!ev.dataTransfer?.types.includes('Files')) return;
    depth++;
    hint.hidden = false;
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) hint.hidden = true;
  });
  window.addEventListener('dragover', (ev) => ev.preventDefault());
  window.addEventListener('drop', (ev) => {
    ev.preventDefault();
    depth = 0;
    hint.hidden = true;
    const files = [...(ev.dataTransfer?.files ?? [])];
    if (files.length > 0) open(files);
  });
}
