// Reading a run's metrics.jsonl while the Trainer may be appending to it: only lines that end in a
// newline count (the last one may be half-written: it is held back until its newline arrives), and
// a complete line that is not a JSON object stops the reading there with an error naming the line.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const METRICS_FILE = 'metrics.jsonl';

/** One row of metrics.jsonl: a `step` or an `eval` record as the Trainer writes them. */
export type MetricsRow = Record<string, unknown> & { type: string; step: number };

export interface MetricsChunk {
  rows: MetricsRow[];
  /** Byte offset just past the last complete line read (where the next read starts). */
  offset: number;
  /** Complete lines read so far (the next line's number is lines + 1). */
  lines: number;
  /** Bytes after `offset` that do not end in a newline yet (a line being written). */
  pendingBytes: number;
  /** `metrics.jsonl line N: ...` for the first bad complete line; reading stops before it. */
  error?: string;
}

/** Parses the complete lines of `text` (numbered from `firstLine`); a trailing partial line is left. */
export function parseMetricsText(text: string, firstLine = 1): { rows: MetricsRow[]; consumed: number; lines: number; error?: string } {
  const rows: MetricsRow[] = [];
  let pos = 0;
  let line = firstLine - 1;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break;
    const raw = text.slice(pos, nl).trim();
    line++;
    if (raw) {
      const row = parseRow(raw);
      if (typeof row === 'string') return { rows, consumed: Buffer.byteLength(text.slice(0, pos)), lines: line - 1, error: `${METRICS_FILE} line ${line}: ${row}` };
      rows.push(row);
    }
    pos = nl + 1;
  }
  return { rows, consumed: Buffer.byteLength(text.slice(0, pos)), lines: line };
}

function parseRow(raw: string): MetricsRow | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const row = value as Record<string, unknown>;
  if (typeof row.type !== 'string') return "no 'type' (step or eval)";
  if (typeof row.step !== 'number' || !Number.isFinite(row.step)) return "no numeric 'step'";
  return row as MetricsRow;
}

/**
 * Reads complete lines of `file` from byte `offset` on. Throws the fs error (ENOENT when the file
 * is gone); a file shorter than `offset` (rewritten) reads as `{ truncated: true }`.
 */
export function readMetricsFrom(file: string, offset = 0, lines = 0): MetricsChunk & { truncated?: boolean } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < offset) return { rows: [], offset, lines, pendingBytes: 0, truncated: true };
    const buf = Buffer.alloc(size - offset);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    // Cut at the last newline in bytes, so a multi-byte character split by a write is never decoded.
    const end = buf.lastIndexOf(0x0a, got - 1) + 1;
    const parsed = parseMetricsText(buf.subarray(0, end).toString('utf8'), lines + 1);
    return { rows: parsed.rows, offset: offset + parsed.consumed, lines: parsed.lines, pendingBytes: got - parsed.consumed, error: parsed.error };
  } finally {
    closeSync(fd);
  }
}
