/**
 * explain-volume's class names: `--labels FILE`, else a labels file beside the model (`labels.json`,
 * else `labels.txt`, as the explorer looks for one) when it names as many classes as the model has;
 * `--class` takes an index or one of those names.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SegGradCamError } from '../../errors.js';
import { readLabelsFile } from '../../io/labels-node.js';

/** The class names for a model of `classes` classes at `modelPath` (undefined: none known). */
export async function volumeClassNames(modelPath: string, classes: number, labels?: string): Promise<string[] | undefined> {
  if (labels !== undefined) {
    const names = await readLabelsFile(labels);
    if (names.length !== classes)
      throw new SegGradCamError(`--labels ${labels} names ${names.length} classes; the model has ${classes}`, 'usage');
    return names;
  }
  for (const file of ['labels.json', 'labels.txt']) {
    const path = join(dirname(modelPath), file);
    if (!existsSync(path)) continue;
    try {
      const names = await readLabelsFile(path);
      if (names.length === classes) return names;
    } catch {
      // A labels file beside the model that does not parse is not the user's request: ignored, as in the explorer.
    }
    return undefined;
  }
  return undefined;
}

/** --class as an index (0..classes − 1) or a class name; undefined when not given. */
export function volumeClassId(text: string | undefined, classes: number, names: string[] | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const c = Number(t);
    if (c >= classes) throw new SegGradCamError(`class ${c} is not one of the model's ${classes} classes (0..${classes - 1})`, 'class');
    return c;
  }
  const c = names ? names.indexOf(t) : -1;
  if (c < 0)
    throw new SegGradCamError(
      `unknown class '${t}'; ${names ? `known classes: ${names.join(', ')}` : 'no class names are known (give --labels or an index)'}`,
      'class',
    );
  return c;
}
