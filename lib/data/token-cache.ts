/**
 * An on-disk cache of tokenized datasets. Encoding a dataset (chat template rendering, the Rust
 * tokenizer, assistant spans) is the slow part of data preparation; the cache keeps, per dataset
 * file, the examples `encodeRecords` produced (one per record, untruncated), so a second run on
 * the same file and tokenizer reads them back instead. Truncation, packing and the stats are
 * applied after the cache (finishExamples), so `maxSeqLength`, `overflow` and `packing` can change
 * without a miss and give exactly what a fresh tokenization gives.
 *
 * The key: a sha256 of the data file's bytes (a folder: every data file's name and bytes), the
 * tokenizer's `fingerprint` (tokenizer.json, its config files, chat templates, options), the
 * options that change records or their encoding (format, columns, limit, skipInvalid, trainOn,
 * addEos, templateName, templateVariables, a `variant` naming any transform of the records) and
 * the lorafit version. The file is named after the key's hash and also holds the whole key, the
 * record count and a sha256 of its payload: a file whose key, size or checksum does not match is
 * ignored (and rewritten), never trusted. Files are written atomically (temporary + rename).
 *
 * Default folder: `<LORAFIT_CACHE or ~/.cache/lorafit>/tokenized`; `cache: false` turns it off.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { join, relative } from 'node:path';
import { cacheDir } from '../model/default-model.js';
import { packageRoot } from '../model/native.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { writeFileAtomicStreamSync } from '../util/fs-atomic.js';
import type { DataRecord } from './formats.js';
import { emptyDatasetStats, loadDataset, type DatasetStats, type LoadDatasetOptions } from './load-dataset.js';
import { listDataFiles } from './readers.js';
import { emptyStats, encodeRecords, finishExamples, type TokenizedExample, type TokenizeOptions, type TokenizeStats } from './tokenize.js';

const MAGIC = Buffer.from('LORAFIT-TOKENS\n\0', 'latin1'); // 16 bytes
const FORMAT_VERSION = 1;

export interface TokenCacheOptions {
  /** Folder of the cache files. Default `<LORAFIT_CACHE or ~/.cache/lorafit>/tokenized`. */
  dir?: string;
}

export interface EncodeFileOptions extends TokenizeOptions {
  /** How the file is read (format, columns, limit, skipInvalid, ...), as for loadDataset. */
  load?: LoadDatasetOptions;
  /** The cache folder, or false to read and write no cache. Default: the lorafit cache folder. */
  cache?: TokenCacheOptions | false;
  /**
   * The records `loadDataset(path, load)` gives, already read by the caller (then transformed as
   * `variant` says): a miss encodes these instead of reading the file again. They must be exactly
   * that: the cache trusts them to match the file.
   */
  records?: readonly DataRecord[];
  /** Names a transform the caller applied to the records (part of the key). */
  variant?: string;
  /** Called with the number of records encoded so far (on a miss or with the cache off). */
  onProgress?: (records: number) => void;
  /** Gets a warn when a cache file is ignored (corrupt, mismatching) or cannot be written. */
  logger?: { warn(obj: object, msg: string): void };
}

export type CacheStatus = 'hit' | 'miss' | 'off';

export interface EncodedDataset {
  /** One example per record, in record order, untruncated (what encodeRecords gives). */
  encoded: TokenizedExample[];
  /** Records and rows skipped while loading (stored in the cache too, so a hit reports them). */
  datasetStats: DatasetStats;
  cache: { status: CacheStatus; file?: string; reason?: string };
}

/** A dataset file's records encoded one per record, from the cache when it holds them. */
export async function encodeDatasetFile(path: string, tokenizer: Tokenizer, options: EncodeFileOptions = {}): Promise<EncodedDataset> {
  const { cache = {}, load = {}, records, logger, onProgress } = options;
  const fresh = async (): Promise<{ encoded: TokenizedExample[]; datasetStats: DatasetStats }> => {
    let input: Iterable<DataRecord>;
    let datasetStats: DatasetStats;
    if (records !== undefined) {
      input = records;
      datasetStats = load.stats ? structuredClone(load.stats) : { ...emptyDatasetStats(), records: records.length };
    } else {
      datasetStats = emptyDatasetStats();
      input = await loadDataset(path, { ...load, stats: datasetStats });
    }
    const encoded: TokenizedExample[] = [];
    for await (const e of encodeRecords(input, tokenizer, options)) {
      encoded.push(e);
      onProgress?.(encoded.length);
    }
    return { encoded, datasetStats };
  };
  const off = (reason: string) => fresh().then((r) => ({ ...r, cache: { status: 'off' as const, reason } }));
  if (cache === false) return off('disabled');
  if (load.filter) return off('a filter function cannot be part of the cache key');
  if (endianness() !== 'LE') return off('big-endian host');

  const key = await cacheKey(path, tokenizer, options);
  const keyJson = stableJson(key);
  const dir = cache.dir ?? join(cacheDir(), 'tokenized');
  const file = join(dir, `${sha256(keyJson).slice(0, 40)}.tokens`);
  if (existsSync(file)) {
    const read = readCacheFile(file, keyJson);
    if ('encoded' in read) {
      if (records === undefined || records.length === read.encoded.length) {
        return { encoded: read.encoded, datasetStats: read.datasetStats, cache: { status: 'hit', file } };
      }
      logger?.warn({ file }, `tokenization cache ${file} holds ${read.encoded.length} records, not ${records.length}: ignored and rewritten`);
    } else {
      logger?.warn({ file, reason: read.reason }, `tokenization cache ${file} ignored (${read.reason}) and rewritten`);
    }
  }
  const result = await fresh();
  try {
    mkdirSync(dir, { recursive: true });
    writeCacheFile(file, keyJson, result.encoded, result.datasetStats);
  } catch (err) {
    // A cache that cannot be written costs the next run time, not this one its data.
    logger?.warn({ file, err: (err as Error).message }, `tokenization cache not written: ${(err as Error).message}`);
    return { ...result, cache: { status: 'miss', file, reason: `not written: ${(err as Error).message}` } };
  }
  return { ...result, cache: { status: 'miss', file } };
}

/** A dataset file to training examples (encodeDatasetFile, then truncation/packing and the stats). */
export async function tokenizeFile(
  path: string,
  tokenizer: Tokenizer,
  options: EncodeFileOptions = {},
): Promise<{ examples: TokenizedExample[]; stats: TokenizeStats; datasetStats: DatasetStats; cache: EncodedDataset['cache'] }> {
  const { encoded, datasetStats, cache } = await encodeDatasetFile(path, tokenizer, options);
  const stats = emptyStats();
  const examples: TokenizedExample[] = [];
  for await (const e of finishExamples(encoded, options, stats)) examples.push(e);
  return { examples, stats, datasetStats, cache };
}

/** Everything the encoded examples depend on. */
async function cacheKey(path: string, tokenizer: Tokenizer, options: EncodeFileOptions): Promise<Record<string, unknown>> {
  const load = options.load ?? {};
  return {
    format: FORMAT_VERSION,
    lorafit: lorafitVersion(),
    data: await hashData(path),
    tokenizer: tokenizer.fingerprint,
    load: {
      fileType: load.fileType,
      textMode: load.textMode,
      textColumn: load.textColumn,
      format: load.format,
      columns: load.columns,
      roleMap: load.roleMap,
      textJoiner: load.textJoiner,
      limit: load.limit,
      skipInvalid: load.skipInvalid ?? false,
    },
    encode: {
      addEos: options.addEos ?? true,
      trainOn: options.trainOn ?? 'all-assistant',
      templateName: options.templateName,
      templateVariables: options.templateVariables,
    },
    variant: options.variant,
  };
}

let version: string | undefined;
function lorafitVersion(): string {
  version ??= String((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version);
  return version;
}

/** sha256 of a file's bytes, or of a folder's data files (relative names and bytes, sorted). */
async function hashData(path: string): Promise<string> {
  const h = createHash('sha256');
  if (statSync(path).isDirectory()) {
    for (const f of await listDataFiles(path)) {
      h.update(`${relative(path, f)}\0${await hashFile(f)}\0`);
    }
  } else h.update(await hashFile(path));
  return h.digest('hex');
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * Layout: MAGIC (16 bytes), u32 LE header length, header JSON (space-padded so the payload starts
 * on a 4-byte boundary), then the payload as little-endian int32: lengths[count], ids[total],
 * labels[total]. The header holds the key, count, total and the payload's sha256.
 */
function writeCacheFile(file: string, keyJson: string, encoded: TokenizedExample[], datasetStats: DatasetStats): void {
  const count = encoded.length;
  let total = 0;
  for (const e of encoded) total += e.inputIds.length;
  const lengths = Int32Array.from(encoded, (e) => e.inputIds.length);
  const bytes = (a: Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const h = createHash('sha256').update(bytes(lengths));
  for (const e of encoded) h.update(bytes(e.inputIds));
  for (const e of encoded) h.update(bytes(e.labels));
  const header = JSON.stringify({ key: JSON.parse(keyJson), count, total, sha256: h.digest('hex'), datasetStats });
  let headerBytes = Buffer.from(header, 'utf8');
  const pad = (4 - ((MAGIC.length + 4 + headerBytes.length) % 4)) % 4;
  headerBytes = Buffer.concat([headerBytes, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerBytes.length);
  writeFileAtomicStreamSync(file, (put) => {
    put(MAGIC);
    put(len);
    put(headerBytes);
    put(bytes(lengths));
    for (const e of encoded) put(bytes(e.inputIds));
    for (const e of encoded) put(bytes(e.labels));
  });
}

function readCacheFile(file: string, keyJson: string): { encoded: TokenizedExample[]; datasetStats: DatasetStats } | { reason: string } {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    return { reason: `unreadable: ${(err as Error).message}` };
  }
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return { reason: 'not a lorafit token cache file' };
  const headerLength = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4 + headerLength;
  if (start > buf.length || start % 4 !== 0) return { reason: 'truncated header' };
  let header: { key?: unknown; count?: unknown; total?: unknown; sha256?: unknown; datasetStats?: DatasetStats };
  try {
    header = JSON.parse(buf.toString('utf8', MAGIC.length + 4, start)) as typeof header;
  } catch {
    return { reason: 'corrupt header' };
  }
  if (stableJson(header.key) !== keyJson) return { reason: 'key mismatch' };
  const { count, total } = header;
  if (!Number.isSafeInteger(count) || !Number.isSafeInteger(total) || (count as number) < 0 || (total as number) < 0) return { reason: 'corrupt header' };
  const n = count as number;
  const t = total as number;
  if (buf.length !== start + 4 * (n + 2 * t)) return { reason: `size ${buf.length} bytes, expected ${start + 4 * (n + 2 * t)}` };
  const payload = buf.subarray(start);
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) return { reason: 'checksum mismatch' };
  // One aligned copy (a Buffer's byteOffset need not be a multiple of 4).
  const ints = new Int32Array(n + 2 * t);
  new Uint8Array(ints.buffer).set(payload);
  const lengths = ints.subarray(0, n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (lengths[i] < 0) return { reason: 'corrupt lengths' };
    sum += lengths[i];
  }
  if (sum !== t) return { reason: 'corrupt lengths' };
  const encoded: TokenizedExample[] = new Array(n);
  let ids = n;
  let labels = n + t;
  for (let i = 0; i < n; i++) {
    const l = lengths[i];
    encoded[i] = { inputIds: ints.subarray(ids, ids + l), labels: ints.subarray(labels, labels + l) };
    ids += l;
    labels += l;
  }
  return { encoded, datasetStats: header.datasetStats ?? { ...emptyDatasetStats(), records: n } };
}

/** JSON with object keys sorted and undefined members left out, so equal keys give equal text. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = (v as Record<string, unknown>)[k];
    return out;
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
