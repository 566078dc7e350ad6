// GGUF header reader (llama.cpp's file format, versions 2 and 3, little-endian): metadata and the
// tensor table, never the tensor data (native/gguf_weights.cc maps and dequantizes that).
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 KV count; KV pairs (string key, u32 type,
// value); tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type,
// u64 offset relative to the data section); padding to `general.alignment` (default 32); data.
// Every count, length and offset is checked against the file size before it is used, so a corrupt
// or hostile header gives a LorafitError (code E_GGUF) naming the key or tensor, never a crash or
// a huge allocation.
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { LorafitError } from '../errors.js';
import { GGML_TYPES, ggmlTypeName } from './ggml-types.js';

export const GGUF_MAGIC = 'GGUF';

/** Whether the file starts with the GGUF magic (any extension: Ollama's blobs have none). Throws fs errors. */
export function startsWithGgufMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === GGUF_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** gguf_type: the type tag of a metadata value. */
export enum GgufType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** A metadata value: numbers (64-bit integers beyond 2^53 as bigint), strings, booleans, arrays. */
export type GgufValue =
  | number | bigint | boolean | string
  | string[] | boolean[] | number[] | bigint[]
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array
  | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** numpy/HF order, outermost first (ggml's `ne` reversed): a Linear weight is [out, in]. */
  shape: number[];
  /** ggml_type number (see ggml-types.ts). */
  type: number;
  typeName: string;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  nbytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

const MAX_COUNT = 1 << 24;        // tensors or keys: real files hold a few thousand
const MAX_KEY_BYTES = 1 << 16;
const MAX_DIMS = 4;               // GGML_MAX_DIMS
const CHUNK = 1 << 20;

function fail(path: string, what: string): never {
  throw new LorafitError('E_GGUF', `${path}: ${what}`);
}

/** Reads forward through the file in chunks; `need(n)` makes n bytes available at `pos`. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;  // file offset of buf[0]
  pos = 0;               // file offset of the next byte
  constructor(private readonly fh: FileHandle, readonly path: string, readonly size: number) {}

  /** Whether n bytes are already buffered (then `need` would not read: callers skip the await). */
  has(n: number): boolean {
    return n >= 0 && this.bufStart + this.buf.length - this.pos >= n;
  }

  async need(n: number, what: string): Promise<void> {
    if (n < 0 || this.pos + n > this.size) {
      fail(this.path, `${what} needs ${n} bytes at offset ${this.pos}, but the file ends at ${this.size} (truncated or corrupt)`);
    }
    const have = this.bufStart + this.buf.length - this.pos;
    if (have >= n) return;
    const want = Math.min(Math.max(n, CHUNK), this.size - this.pos);
    const next = Buffer.allocUnsafe(want);
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.fh.read(next, 0, want, this.pos));
    } catch (e) {
      throw new LorafitError('E_GGUF', `${this.path}: ${what}: cannot read (${(e as Error).message})`, { cause: e });
    }
    if (bytesRead < n) fail(this.path, `${what}: short read at offset ${this.pos}`);
    this.buf = next.subarray(0, bytesRead);
    this.bufStart = this.pos;
  }
  private at(): number { return this.pos - this.bufStart; }
  /** A length-prefixed string when it is wholly buffered (and plausible), else undefined. */
  bufferedString(): string | undefined {
    if (!this.has(8)) return undefined;
    const n = this.buf.readBigUInt64LE(this.at());
    if (n > BigInt(this.size - this.pos - 8) || !this.has(8 + Number(n))) return undefined;
    const start = this.at() + 8;
    this.pos += 8 + Number(n);
    return this.buf.toString('utf8', start, start + Number(n));
  }
  u8(): number { const v = this.buf.readUInt8(this.at()); this.pos += 1; return v; }
  i8(): number { const v = this.buf.readInt8(this.at()); this.pos += 1; return v; }
  u16(): number { const v = this.buf.readUInt16LE(this.at()); this.pos += 2; return v; }
  i16(): number { const v = this.buf.readInt16LE(this.at()); this.pos += 2; return v; }
  u32(): number { const v = this.buf.readUInt32LE(this.at()); this.pos += 4; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.at()); this.pos += 4; return v; }
  f32(): number { const v = this.buf.readFloatLE(this.at()); this.pos += 4; return v; }
  f64(): number { const v = this.buf.readDoubleLE(this.at()); this.pos += 8; return v; }
  u64(): bigint { const v = this.buf.readBigUInt64LE(this.at()); this.pos += 8; return v; }
  i64(): bigint { const v = this.buf.readBigInt64LE(this.at()); this.pos += 8; return v; }
  bytes(n: number): Buffer { const v = this.buf.subarray(this.at(), this.at() + n); this.pos += n; return v; }
}

const SCALAR_BYTES: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1, [GgufType.INT8]: 1, [GgufType.UINT16]: 2, [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4, [GgufType.INT32]: 4, [GgufType.FLOAT32]: 4, [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8, [GgufType.INT64]: 8, [GgufType.FLOAT64]: 8,
};

function toNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

async function readCount(c: Cursor, what: string, max: number): Promise<number> {
  await c.need(8, what);
  const v = c.u64();
  if (v > BigInt(max)) fail(c.path, `${what} is ${v}, more than this reader accepts (${max}): corrupt header`);
  return Number(v);
}

async function readString(c: Cursor, what: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<string> {
  if (!c.has(8)) await c.need(8, what);
  const n = c.u64();
  if (n > BigInt(Math.min(maxBytes, c.size - c.pos))) {
    fail(c.path, `${what}: string length ${n} does not fit in the file`);
  }
  if (!c.has(Number(n))) await c.need(Number(n), what);
  return c.bytes(Number(n)).toString('utf8');
}

async function readScalar(c: Cursor, type: GgufType, what: string): Promise<GgufValue> {
  if (type === GgufType.STRING) return readString(c, what);
  const size = SCALAR_BYTES[type];
  if (size === undefined) fail(c.path, `${what}: unknown value type ${type}`);
  await c.need(size, what);
  switch (type) {
    case GgufType.UINT8: return c.u8();
    case GgufType.INT8: return c.i8();
    case GgufType.UINT16: return c.u16();
    case GgufType.INT16: return c.i16();
    case GgufType.UINT32: return c.u32();
    case GgufType.INT32: return c.i32();
    case GgufType.FLOAT32: return c.f32();
    case GgufType.FLOAT64: return c.f64();
    case GgufType.BOOL: {
      const b = c.u8();
      if (b > 1) fail(c.path, `${what}: bool value ${b}`);
      return b === 1;
    }
    case GgufType.UINT64: return toNumber(c.u64());
    default: return toNumber(c.i64());
  }
}

// Numeric arrays become typed arrays (token scores, token types: tens of thousands of entries).
const TYPED: Partial<Record<GgufType, (n: number) => { set(i: number, c: Cursor): void; value: GgufValue }>> = {
  [GgufType.UINT8]: (n) => { const a = new Uint8Array(n); return { set: (i, c) => { a[i] = c.u8(); }, value: a }; },
  [GgufType.INT8]: (n) => { const a = new Int8Array(n); return { set: (i, c) => { a[i] = c.i8(); }, value: a }; },
  [GgufType.UINT16]: (n) => { const a = new Uint16Array(n); return { set: (i, c) => { a[i] = c.u16(); }, value: a }; },
  [GgufType.INT16]: (n) => { const a = new Int16Array(n); return { set: (i, c) => { a[i] = c.i16(); }, value: a }; },
  [GgufType.UINT32]: (n) => { const a = new Uint32Array(n); return { set: (i, c) => { a[i] = c.u32(); }, value: a }; },
  [GgufType.INT32]: (n) => { const a = new Int32Array(n); return { set: (i, c) => { a[i] = c.i32(); }, value: a }; },
  [GgufType.FLOAT32]: (n) => { const a = new Float32Array(n); return { set: (i, c) => { a[i] = c.f32(); }, value: a }; },
  [GgufType.FLOAT64]: (n) => { const a = new Float64Array(n); return { set: (i, c) => { a[i] = c.f64(); }, value: a }; },
};

async function readValue(c: Cursor, type: GgufType, what: string, depth = 0): Promise<GgufValue> {
  if (type !== GgufType.ARRAY) return readScalar(c, type, what);
  if (depth > 2) fail(c.path, `${what}: arrays nested deeper than 2`);
  await c.need(4, what);
  const itemType = c.u32() as GgufType;
  const n = await readCount(c, `${what}: array length`, MAX_COUNT * 4);
  const size = SCALAR_BYTES[itemType];
  // Every item takes at least one byte (a string at least 8): a length the file cannot hold is corrupt.
  const minBytes = itemType === GgufType.STRING ? 8 : itemType === GgufType.ARRAY ? 12 : size;
  if (minBytes === undefined) fail(c.path, `${what}: unknown array item type ${itemType}`);
  if (n * minBytes > c.size - c.pos) fail(c.path, `${what}: array of ${n} items does not fit in the file`);
  const typed = TYPED[itemType];
  if (typed && size !== undefined) {
    const t = typed(n);
    for (let i = 0; i < n; i += 65536) {
      const k = Math.min(65536, n - i);
      await c.need(k * size, what);
      for (let j = 0; j < k; j++) t.set(i + j, c);
    }
    return t.value;
  }
  const out: GgufValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    // Token and merge lists hold ~100k strings: read them without an await while they are buffered.
    const fast = itemType === GgufType.STRING ? c.bufferedString() : undefined;
    out[i] = fast ?? (await readValue(c, itemType, what, depth + 1));
  }
  return out as GgufValue;
}

function tensorBytes(path: string, name: string, type: number, ne: bigint[]): number {
  const info = GGML_TYPES[type];
  if (!info) fail(path, `tensor '${name}' has an unknown ggml type ${type}`);
  let n = 1n;
  for (const d of ne) n *= d;
  if (ne[0] % BigInt(info.blockSize) !== 0n) {
    fail(path, `tensor '${name}' (${info.name}) has rows of ${ne[0]} values, not a multiple of its block size ${info.blockSize}`);
  }
  const bytes = (n / BigInt(info.blockSize)) * BigInt(info.blockBytes);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `tensor '${name}' is too large (${bytes} bytes)`);
  return Number(bytes);
}

/** Reads a GGUF file's metadata and tensor table. Throws LorafitError('E_GGUF') on a bad header. */
export async function readGguf(path: string): Promise<GgufFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new LorafitError('E_GGUF', `${path}: cannot open (${(e as Error).message})`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) fail(path, 'not a file (a GGUF model is one file)');
    const size = st.size;
    const c = new Cursor(fh, path, size);
    await c.need(4, 'the magic');
    const magic = c.bytes(4).toString('latin1');
    if (magic !== GGUF_MAGIC) fail(path, `not a GGUF file (magic ${JSON.stringify(magic)}, expected "GGUF")`);
    await c.need(4, 'the version');
    const version = c.u32();
    if (version !== 2 && version !== 3) fail(path, `GGUF version ${version} is not supported (2 and 3 are)`);
    const nTensors = await readCount(c, 'the tensor count', MAX_COUNT);
    const nKv = await readCount(c, 'the metadata count', MAX_COUNT);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = await readString(c, `metadata key #${i}`, MAX_KEY_BYTES);
      if (metadata.has(key)) fail(path, `metadata key '${key}' appears twice`);
      await c.need(4, `metadata '${key}'`);
      const type = c.u32() as GgufType;
      metadata.set(key, await readValue(c, type, `metadata '${key}'`));
    }

    const raw: Array<{ name: string; ne: bigint[]; type: number; rel: bigint }> = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = await readString(c, `tensor #${i} name`, MAX_KEY_BYTES);
      if (names.has(name)) fail(path, `tensor '${name}' appears twice`);
      names.add(name);
      await c.need(4, `tensor '${name}'`);
      const nDims = c.u32();
      if (nDims < 1 || nDims > MAX_DIMS) fail(path, `tensor '${name}' has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
      await c.need(8 * nDims + 4 + 8, `tensor '${name}'`);
      const ne: bigint[] = [];
      for (let d = 0; d < nDims; d++) {
        const v = c.u64();
        if (v === 0n || v > BigInt(size) * 256n) fail(path, `tensor '${name}' has dimension ${d} of size ${v}`);
        ne.push(v);
      }
      const type = c.u32();
      const rel = c.u64();
      raw.push({ name, ne, type, rel });
    }

    const alignValue = metadata.get('general.alignment') ?? 32;
    if (typeof alignValue !== 'number' || !Number.isInteger(alignValue) || alignValue <= 0 || (alignValue & (alignValue - 1)) !== 0) {
      fail(path, `metadata 'general.alignment' must be a power of two, got ${String(alignValue)}`);
    }
    const alignment = alignValue;
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const tensors: GgufTensorInfo[] = raw.map(({ name, ne, type, rel }) => {
      const nbytes = tensorBytes(path, name, type, ne);
      if (rel % BigInt(alignment) !== 0n) fail(path, `tensor '${name}' has offset ${rel}, not aligned to ${alignment}`);
      const offset = BigInt(dataOffset) + rel;
      if (offset + BigInt(nbytes) > BigInt(size)) {
        fail(path, `tensor '${name}' (${ggmlTypeName(type)}, ${nbytes} bytes at offset ${offset}) lies beyond the end of the file (${size} bytes): truncated?`);
      }
      return { name, shape: ne.map(Number).reverse(), type, typeName: ggmlTypeName(type), offset: Number(offset), nbytes };
    });
    return { path, version, metadata, tensors, alignment, dataOffset, fileSize: size };
  } finally {
    await fh.close();
  }
}

// ---- typed accessors for metadata, with errors that name the key ----

export function metaString(f: GgufFile, key: string): string | undefined {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(f.path, `metadata '${key}' should be a string, got ${describe(v)}`);
  return v;
}

export function metaNumber(f: GgufFile, key: string): number | undefined {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number') fail(f.path, `metadata '${key}' should be a number, got ${describe(v)}`);
  return v;
}

export function metaBool(f: GgufFile, key: string): boolean | undefined {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(f.path, `metadata '${key}' should be a bool, got ${describe(v)}`);
  return v;
}

export function metaStrings(f: GgufFile, key: string): string[] | undefined {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(f.path, `metadata '${key}' should be an array of strings, got ${describe(v)}`);
  return v as string[];
}

/** A numeric array (typed or plain) as plain numbers. */
export function metaNumbers(f: GgufFile, key: string): number[] | undefined {
  const v = f.metadata.get(key);
  if (v === undefined) return undefined;
  if (ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<number>);
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  fail(f.path, `metadata '${key}' should be an array of numbers, got ${describe(v)}`);
}

export function requireMeta<T>(f: GgufFile, key: string, v: T | undefined): T {
  if (v === undefined) fail(f.path, `metadata '${key}' is missing`);
  return v;
}

function describe(v: GgufValue): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a numeric array of ${(v as unknown as ArrayLike<number>).length}`;
  return `${typeof v} ${JSON.stringify(typeof v === 'bigint' ? String(v) : v).slice(0, 40)}`;
}
