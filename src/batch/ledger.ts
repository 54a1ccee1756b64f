/**
 * The ledger of a batch run: which items are finished, and their records. It is a folder
 * `ledger/` in the output folder with one append-only JSON Lines file per writing process
 * (`HOST-PID-RANDOM.jsonl`), so processes on several machines never write to the same file. An
 * item's line is written with one write() call and fsync'ed, only after every output file of the
 * item has been renamed into place: a line in the ledger means the item is complete on disk.
 * A process killed during the write leaves at most a torn last line of its own file, which is
 * ignored (it does not end in '\n' or does not parse). When several lines name one item (a retried
 * failure, or a queue job taken again after its worker stalled), the latest finished one counts.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ItemRecord } from './item.js';

export interface LedgerLine extends ItemRecord {
  /** When the line was written (ms since the epoch). */
  at: number;
}

export const ledgerDir = (outDir: string) => join(outDir, 'ledger');

/** Every item's latest record in the ledger (empty for a new output folder). */
export async function readLedger(outDir: string): Promise<Map<string, LedgerLine>> {
  const dir = ledgerDir(outDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out = new Map<string, LedgerLine>();
  for (const name of names.filter((n) => n.endsWith('.jsonl')).sort()) {
    const text = await readFile(join(dir, name), 'utf8');
    const lines = text.split('\n');
    lines.pop(); // the part after the last '\n': empty, or a torn line
    for (const line of lines) {
      let rec: LedgerLine;
      try {
        rec = JSON.parse(line) as LedgerLine;
      } catch {
        continue;
      }
      const old = out.get(rec.item);
      if (!old || rec.at >= old.at) out.set(rec.item, rec);
    }
  }
  return out;
}

/** This process's ledger file, opened for appending. */
export class LedgerWriter {
  private fd: number | undefined;
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  static async open(outDir: string): Promise<LedgerWriter> {
    await mkdir(ledgerDir(outDir), { recursive: true });
    const name = `${hostname().replace(/[^A-Za-z0-9.-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}.jsonl`;
    return new LedgerWriter(join(ledgerDir(outDir), name));
  }

  /** Appends the item's line in one write and flushes it to disk before returning. */
  append(record: ItemRecord): LedgerLine {
    const line: LedgerLine = { ...record, at: Date.now() };
    this.fd ??= openSync(this.path, 'a');
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off);
    fsyncSync(this.fd);
    return line;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
