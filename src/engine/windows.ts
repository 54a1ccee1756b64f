/**
 * Which regions share a windowed backward pass, on every engine. K cotangents stacked in one
 * backward run all run on the union of their windows; regions far apart are better run on their
 * own windows (on a CPU a backward run is compute-bound, linear in its window's area). The rule:
 * a region joins the first group whose window, grown by the region's, costs at most 1.15x the
 * largest member's alone; regions without a window (the whole map) group only with each other.
 */

/** How much a merged window may cost over the largest of its members. */
export const WINDOW_GROWTH = 1.15;

export interface WindowGroup<W> {
  /** Indices into the items, in order. */
  members: number[];
  /** The union of the members' windows (undefined: the whole map). */
  window: W | undefined;
}

/**
 * Groups items by their windows (undefined: no window) under the rule above, at most `maxSize`
 * per group. `cost` is a window's cost (area, or mean fraction of the maps), `union` the window
 * holding two.
 */
export function groupByWindow<W>(
  windows: Array<W | undefined>,
  cost: (w: W) => number,
  union: (a: W, b: W) => W,
  maxSize = Infinity,
): Array<WindowGroup<W>> {
  const groups: Array<WindowGroup<W> & { largest: number }> = [];
  windows.forEach((w, i) => {
    const fit = groups.find(
      (g) =>
        g.members.length < maxSize &&
        (g.window === undefined) === (w === undefined) &&
        (w === undefined || cost(union(g.window as W, w)) <= WINDOW_GROWTH * Math.max(g.largest, cost(w))),
    );
    if (!fit) groups.push({ members: [i], window: w, largest: w === undefined ? 0 : cost(w) });
    else {
      fit.members.push(i);
      if (w !== undefined) {
        fit.window = union(fit.window as W, w);
        fit.largest = Math.max(fit.largest, cost(w));
      }
    }
  });
  return groups.map(({ members, window }) => ({ members, window }));
}
