/**
 * Dataset file readers: JSONL, JSON arrays, CSV/TSV, Parquet, plain text, `.gz` variants of the
 * line formats, and folders of them. Every reader yields plain rows with the file and the 1-based
 * line (or Parquet row) they came from. Line formats are streamed; nothing reads a large JSONL,
 * CSV or text file whole.
 */
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CsvParser } from './csv-parser.js';
import { LorafitDataError } from './errors.js';
import { readParquetRows } from './parquet-reader.js';

export type FileType = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet' | 'text';

export interface RawRow {
  value: Record<string, unknown>;
  file: string;
  /** 1-based line where the row starts (Parquet: 1-based row number). */
  line: number;
}

export interface ReadOptions {
  /** Force a file type instead of guessing from the extension. */
  fileType?: FileType;
  /** Plain text: one record per non-empty line (default), per blank-line separated paragraph, or per file. */
  textMode?: 'line' | 'paragraph' | 'file';
  /** Column name plain-text records are put under. Default `text`. */
  textColumn?: string;
  /**
   * Called instead of throwing for a row that cannot be read (a malformed JSON line, a record that
   * is not an object, a CSV row with the wrong number of fields); reading goes on with the next
   * row. Errors of a whole file (missing, unparseable .json, broken CSV quoting) still throw.
   */
  onInvalidRow?: (error: LorafitDataError) => void;
}

const EXTENSIONS: Record<string, FileType> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.parquet': 'parquet',
  '.txt': 'text',
  '.text': 'text',
};

/** The file type implied by a name (`.jsonl.gz` counts as `.jsonl`), or null. */
export function fileTypeOf(path: string): FileType | null {
  const name = path.toLowerCase().endsWith('.gz') ? path.slice(0, -3) : path;
  return EXTENSIONS[extname(name).toLowerCase()] ?? null;
}

/** Data files under a folder, recursively, sorted by path; hidden files and unknown types skipped. */
export async function listDataFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await fs.readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && fileTypeOf(path) !== null) out.push(path);
    }
  };
  await walk(dir);
  return out;
}

/** Rows of a file or of every data file in a folder. */
export async function* readRows(path: string, options: ReadOptions = {}): AsyncGenerator<RawRow> {
  if (!existsSync(path)) throw new LorafitDataError('E_DATA_IO', 'no such file or folder', { file: path });
  const stat = await fs.stat(path);
  if (stat.isDirectory()) {
    const files = await listDataFiles(path);
    if (files.length === 0) {
      throw new LorafitDataError('E_DATA_EMPTY', `no data files (${Object.keys(EXTENSIONS).join(' ')}) in folder`, {
        file: path,
      });
    }
    for (const file of files) yield* readFileRows(file, options);
    return;
  }
  yield* readFileRows(path, options);
}

async function* readFileRows(file: string, options: ReadOptions): AsyncGenerator<RawRow> {
  const type = options.fileType ?? fileTypeOf(file);
  switch (type) {
    case 'jsonl':
      return yield* readJsonl(file, options.onInvalidRow);
    case 'json':
      return yield* readJsonArray(file, options.onInvalidRow);
    case 'csv':
      return yield* readCsv(file, ',', options.onInvalidRow);
    case 'tsv':
      return yield* readCsv(file, '\t', options.onInvalidRow);
    case 'parquet':
      return yield* readParquetRows(file);
    case 'text':
      return yield* readText(file, options.textMode ?? 'line', options.textColumn ?? 'text');
    default:
      throw new LorafitDataError(
        'E_DATA_FORMAT',
        `unknown file type; expected one of ${Object.keys(EXTENSIONS).join(' ')} (optionally .gz) or pass fileType`,
        { file },
      );
  }
}

function openText(file: string): Readable {
  const raw = createReadStream(file);
  const stream = file.toLowerCase().endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  if (stream !== raw) raw.on('error', (err) => stream.destroy(err));
  stream.setEncoding('utf8');
  return stream;
}

async function* lines(file: string): AsyncGenerator<[string, number]> {
  const rl = createInterface({ input: openText(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of rl) {
      n++;
      yield [n === 1 && line.charCodeAt(0) === 0xfeff ? line.slice(1) : line, n];
    }
  } catch (err) {
    throw new LorafitDataError('E_DATA_IO', `cannot read: ${(err as Error).message}`, { file, line: n + 1, cause: err });
  }
}

type OnInvalid = ReadOptions['onInvalidRow'];

/** Throws `error`, or hands it to `onInvalid` (the row is then skipped). */
function invalid(error: LorafitDataError, onInvalid: OnInvalid): void {
  if (!onInvalid) throw error;
  onInvalid(error);
}

async function* readJsonl(file: string, onInvalid: OnInvalid): AsyncGenerator<RawRow> {
  for await (const [text, line] of lines(file)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      invalid(new LorafitDataError('E_DATA_PARSE', `malformed JSON line: ${(err as Error).message}`, { file, line, cause: err }), onInvalid);
      continue;
    }
    const record = asObject(value, file, line, onInvalid);
    if (record) yield { value: record, file, line };
  }
}

async function* readJsonArray(file: string, onInvalid: OnInvalid): AsyncGenerator<RawRow> {
  const text = await fs.readFile(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new LorafitDataError('E_DATA_PARSE', `malformed JSON: ${(err as Error).message}`, { file, cause: err });
  }
  // Only a top-level array is a dataset: an object such as `{"data": [...]}` is refused rather
  // than guessed at (which of its fields is the data, and is the rest metadata to lose?).
  if (!Array.isArray(value)) {
    const what =
      value !== null && typeof value === 'object'
        ? `an object (keys: ${Object.keys(value).slice(0, 8).map((k) => JSON.stringify(k)).join(', ') || 'none'})`
        : `a JSON ${value === null ? 'null' : typeof value}`;
    throw new LorafitDataError(
      'E_DATA_FORMAT',
      `a .json dataset must be a top-level array of records ([{...}, {...}]); this file holds ${what}. ` +
        'Move the records to the top level (e.g. jq \'.data\' file.json), or write .jsonl with one record per line',
      { file },
    );
  }
  const starts = topLevelElementLines(text);
  for (let i = 0; i < value.length; i++) {
    const line = starts[i] ?? 1;
    const record = asObject(value[i], file, line, onInvalid);
    if (record) yield { value: record, file, line };
  }
}

/** 1-based line of each element of the outermost JSON array (a cheap scan; strings are skipped). */
export function topLevelElementLines(text: string): number[] {
  const out: number[] = [];
  let depth = 0;
  let line = 1;
  let inString = false;
  let expectElement = false;
  let arrayDepth = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') line++;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t') continue;
    if (expectElement && ch !== ']') {
      out.push(line);
      expectElement = false;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') {
      if (ch === '[' && arrayDepth < 0 && depth <= 1) arrayDepth = depth + 1;
      depth++;
      if (depth === arrayDepth && ch === '[') expectElement = true;
    } else if (ch === ']' || ch === '}') {
      depth--;
      expectElement = false;
    } else if (ch === ',' && depth === arrayDepth) expectElement = true;
  }
  return out;
}

async function* readCsv(file: string, delimiter: string, onInvalid: OnInvalid): AsyncGenerator<RawRow> {
  const parser = new CsvParser(delimiter, file);
  let header: string[] | null = null;
  const toRow = (fields: string[], line: number): RawRow | null => {
    if (header === null) {
      header = fields.map((f) => f.trim());
      return null;
    }
    if (fields.length !== header.length) {
      invalid(new LorafitDataError('E_DATA_PARSE', `CSV row has ${fields.length} fields but the header has ${header.length}`, { file, line }), onInvalid);
      return null;
    }
    const value: Record<string, unknown> = {};
    header.forEach((name, i) => (value[name] = fields[i]));
    return { value, file, line };
  };
  const stream = openText(file);
  for await (const chunk of stream) {
    for (const record of parser.push(chunk as string)) {
      const row = toRow(record.fields, record.line);
      if (row) yield row;
    }
  }
  for (const record of parser.end()) {
    const row = toRow(record.fields, record.line);
    if (row) yield row;
  }
}

async function* readText(file: string, mode: 'line' | 'paragraph' | 'file', column: string): AsyncGenerator<RawRow> {
  if (mode === 'file') {
    const text = await fs.readFile(file, 'utf8');
    if (text.trim() !== '') yield { value: { [column]: text.replace(/^\ufeff/, '') }, file, line: 1 };
    return;
  }
  let paragraph: string[] = [];
  let start = 0;
  for await (const [text, line] of lines(file)) {
    if (mode === 'line') {
      if (text.trim() !== '') yield { value: { [column]: text }, file, line };
      continue;
    }
    if (text.trim() === '') {
      if (paragraph.length > 0) yield { value: { [column]: paragraph.join('\n') }, file, line: start };
      paragraph = [];
    } else {
      if (paragraph.length === 0) start = line;
      paragraph.push(text);
    }
  }
  if (paragraph.length > 0) yield { value: { [column]: paragraph.join('\n') }, file, line: start };
}

function asObject(value: unknown, file: string, line: number, onInvalid: OnInvalid): Record<string, unknown> | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
    invalid(new LorafitDataError('E_DATA_FORMAT', `expected a JSON object per record, got ${got}`, { file, line }), onInvalid);
    return null;
  }
  return value as Record<string, unknown>;
}
