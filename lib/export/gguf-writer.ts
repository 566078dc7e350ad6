// Low-level GGUF v3 writer (the file format of llama.cpp / ggml), little-endian only.
//
// Layout: magic "GGUF", u32 version 3, u64 tensor count, u64 KV count, the KV pairs, the tensor
// infos (name, n_dims, dims innermost first, ggml type, offset into the data section), zero
// padding up to `general.alignment` (32), then each tensor's data, each padded to the alignment.
// Tensors are added with their HF/numpy shape (outermost first); the writer reverses it into
// ggml's `ne` order. Tensor data may be given lazily so that a model is never whole in memory.
import { LorafitError } from '../errors.js';
import { writeFileAtomicStreamSync } from '../util/fs-atomic.js';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../util/float16.js';

export { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat };

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the type tag of a metadata value. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor types this writer encodes (values are ggml's `ggml_type`). */
export type GgmlDtype = 'F32' | 'F16' | 'BF16' | 'Q8_0';
export const GGML_TYPE: Record<GgmlDtype, number> = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 };
/** `general.file_type` (llama_ftype) for a file whose 2-D weights are all of one type. */
export const LLAMA_FTYPE: Record<GgmlDtype, number> = { F32: 0, F16: 1, Q8_0: 7, BF16: 32 };

export const QK8_0 = 32;
const Q8_0_BLOCK_BYTES = 2 + QK8_0;

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;
export type GgufScalar = number | bigint | boolean | string;

export type GgufKV =
  | { type: GgufScalarType; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: GgufScalarType; value: readonly GgufScalar[] | ArrayLike<number> };

export interface GgufTensorInput {
  /** HF/numpy order, outermost first (e.g. a Linear weight is [out, in]). */
  shape: number[];
  dtype: GgmlDtype;
  /** float32 values in row-major order, or a function producing them when the data is written. */
  data: Float32Array | (() => Float32Array);
}

interface TensorEntry extends GgufTensorInput {
  name: string;
  nbytes: number;
  offset: number;
}

export function ggmlNbytes(name: string, shape: number[], dtype: GgmlDtype): number {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case 'F32': return n * 4;
    case 'F16': case 'BF16': return n * 2;
    case 'Q8_0': {
      const rowLen = shape.length ? shape[shape.length - 1] : 1;
      if (rowLen % QK8_0 !== 0) {
        throw new LorafitError('E_EXPORT', `tensor '${name}': Q8_0 needs rows that are a multiple of ${QK8_0} values, got [${shape.join(', ')}]`);
      }
      return (n / QK8_0) * Q8_0_BLOCK_BYTES;
    }
  }
}

const pad = (n: number, align: number): number => (align - (n % align)) % align;

export class GgufWriter {
  readonly alignment: number;
  private readonly kv = new Map<string, GgufKV>();
  private readonly tensors: TensorEntry[] = [];
  private readonly tensorNames = new Set<string>();

  constructor(options: { alignment?: number } = {}) {
    this.alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(this.alignment) || this.alignment <= 0 || this.alignment % 8 !== 0) {
      throw new LorafitError('E_EXPORT', `GGUF alignment must be a positive multiple of 8, got ${this.alignment}`);
    }
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT) this.addUint32('general.alignment', this.alignment);
  }

  // ---- metadata ----
  add(key: string, kv: GgufKV): this {
    if (this.kv.has(key)) throw new LorafitError('E_EXPORT', `GGUF key '${key}' written twice`);
    this.kv.set(key, kv);
    return this;
  }
  addUint8(key: string, v: number): this { return this.add(key, { type: GgufValueType.UINT8, value: v }); }
  addInt8(key: string, v: number): this { return this.add(key, { type: GgufValueType.INT8, value: v }); }
  addUint16(key: string, v: number): this { return this.add(key, { type: GgufValueType.UINT16, value: v }); }
  addInt16(key: string, v: number): this { return this.add(key, { type: GgufValueType.INT16, value: v }); }
  addUint32(key: string, v: number): this { return this.add(key, { type: GgufValueType.UINT32, value: v }); }
  addInt32(key: string, v: number): this { return this.add(key, { type: GgufValueType.INT32, value: v }); }
  addUint64(key: string, v: number | bigint): this { return this.add(key, { type: GgufValueType.UINT64, value: v }); }
  addInt64(key: string, v: number | bigint): this { return this.add(key, { type: GgufValueType.INT64, value: v }); }
  addFloat32(key: string, v: number): this { return this.add(key, { type: GgufValueType.FLOAT32, value: v }); }
  addFloat64(key: string, v: number): this { return this.add(key, { type: GgufValueType.FLOAT64, value: v }); }
  addBool(key: string, v: boolean): this { return this.add(key, { type: GgufValueType.BOOL, value: v }); }
  addString(key: string, v: string): this { return this.add(key, { type: GgufValueType.STRING, value: v }); }
  addArray(key: string, itemType: GgufScalarType, value: readonly GgufScalar[] | ArrayLike<number>): this {
    return this.add(key, { type: GgufValueType.ARRAY, itemType, value });
  }

  has(key: string): boolean { return this.kv.has(key); }
  get keys(): string[] { return [...this.kv.keys()]; }

  // ---- tensors ----
  addTensor(name: string, t: GgufTensorInput): this {
    if (this.tensorNames.has(name)) throw new LorafitError('E_EXPORT', `tensor '${name}' added twice`);
    if (Buffer.byteLength(name) >= 64) throw new LorafitError('E_EXPORT', `tensor name '${name}' is longer than ggml's 63-byte limit`);
    if (t.shape.length < 1 || t.shape.length > 4 || !t.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new LorafitError('E_EXPORT', `tensor '${name}': shape [${t.shape.join(', ')}] is not 1-4 positive dimensions`);
    }
    const nbytes = ggmlNbytes(name, t.shape, t.dtype);
    const last = this.tensors[this.tensors.length - 1];
    const offset = last ? last.offset + last.nbytes + pad(last.nbytes, this.alignment) : 0;
    this.tensors.push({ ...t, name, nbytes, offset });
    this.tensorNames.add(name);
    return this;
  }

  get tensorCount(): number { return this.tensors.length; }

  /** Header, KV data and tensor infos, padded to the alignment (the bytes before the data section). */
  headerBytes(): Uint8Array {
    const b = new ByteSink();
    b.u32(GGUF_MAGIC);
    b.u32(GGUF_VERSION);
    b.u64(this.tensors.length);
    b.u64(this.kv.size);
    for (const [key, kv] of this.kv) {
      b.str(key);
      b.u32(kv.type);
      if (kv.type === GgufValueType.ARRAY) {
        b.u32(kv.itemType);
        const n = kv.value.length;
        b.u64(n);
        for (let i = 0; i < n; i++) writeScalar(b, kv.itemType, (kv.value as ArrayLike<GgufScalar>)[i], key);
      } else {
        writeScalar(b, kv.type, kv.value, key);
      }
    }
    for (const t of this.tensors) {
      b.str(t.name);
      b.u32(t.shape.length);
      for (let i = t.shape.length - 1; i >= 0; i--) b.u64(t.shape[i]);
      b.u32(GGML_TYPE[t.dtype]);
      b.u64(t.offset);
    }
    b.zeros(pad(b.length, this.alignment));
    return b.bytes();
  }

  /** Writes the file atomically (temporary sibling, fsync, rename), encoding one tensor at a time. */
  write(file: string): void {
    writeFileAtomicStreamSync(file, (put) => {
      put(this.headerBytes());
      for (const t of this.tensors) {
        const values = typeof t.data === 'function' ? t.data() : t.data;
        const n = t.shape.reduce((a, b) => a * b, 1);
        if (values.length !== n) {
          throw new LorafitError('E_EXPORT', `tensor '${t.name}': ${values.length} values for shape [${t.shape.join(', ')}] (needs ${n})`);
        }
        const bytes = encodeTensor(values, t.dtype, t.name);
        put(bytes);
        const p = pad(bytes.length, this.alignment);
        if (p) put(new Uint8Array(p));
      }
    });
  }
}

function writeScalar(b: ByteSink, type: GgufScalarType, v: GgufScalar, key: string): void {
  const bad = (): never => {
    throw new LorafitError('E_EXPORT', `GGUF key '${key}': value ${String(v)} does not fit type ${GgufValueType[type]}`);
  };
  const int = (lo: number, hi: number): number => {
    const n = typeof v === 'bigint' ? Number(v) : (v as number);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) bad();
    return n;
  };
  switch (type) {
    case GgufValueType.UINT8: b.u8(int(0, 0xff)); break;
    case GgufValueType.INT8: b.i8(int(-0x80, 0x7f)); break;
    case GgufValueType.UINT16: b.u16(int(0, 0xffff)); break;
    case GgufValueType.INT16: b.i16(int(-0x8000, 0x7fff)); break;
    case GgufValueType.UINT32: b.u32(int(0, 0xffffffff)); break;
    case GgufValueType.INT32: b.i32(int(-0x80000000, 0x7fffffff)); break;
    case GgufValueType.UINT64: {
      const n = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v as number) : bad();
      if (n < 0n || n > 0xffffffffffffffffn) bad();
      b.u64(n);
      break;
    }
    case GgufValueType.INT64: {
      const n = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v as number) : bad();
      if (n < -(1n << 63n) || n >= 1n << 63n) bad();
      b.i64(n);
      break;
    }
    case GgufValueType.FLOAT32: if (typeof v !== 'number') bad(); b.f32(v as number); break;
    case GgufValueType.FLOAT64: if (typeof v !== 'number') bad(); b.f64(v as number); break;
    case GgufValueType.BOOL: if (typeof v !== 'boolean') bad(); b.u8(v ? 1 : 0); break;
    case GgufValueType.STRING: if (typeof v !== 'string') bad(); b.str(v as string); break;
    default: bad();
  }
}

/** A growable little-endian byte buffer (reserve first: growing replaces buf and view). */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number): void { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  u64(v: number | bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  f32(v: number): void { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  str(s: string): void {
    const enc = Buffer.from(s, 'utf8');
    this.u64(enc.length);
    const at = this.reserve(enc.length); // before reading this.buf: reserve may replace it
    this.buf.set(enc, at);
  }
  zeros(n: number): void { this.reserve(n); } // the buffer is zero-filled
  bytes(): Uint8Array { return this.buf.slice(0, this.length); }
}

// ---- tensor encodings ----

export function encodeTensor(values: Float32Array, dtype: GgmlDtype, name = '<tensor>'): Uint8Array {
  switch (dtype) {
    case 'F32': return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'F16': return u16Bytes(values, floatToHalf);
    case 'BF16': return u16Bytes(values, floatToBf16);
    case 'Q8_0':
      if (values.length % QK8_0 !== 0) throw new LorafitError('E_EXPORT', `tensor '${name}': ${values.length} values are not a whole number of Q8_0 blocks`);
      return quantizeQ8_0(values);
  }
}

function u16Bytes(values: Float32Array, conv: (x: number) => number): Uint8Array {
  const out = new Uint16Array(values.length); // platform order; Node runs little-endian on all supported targets
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

/** C's roundf: round half away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * Q8_0 exactly as ggml's quantize_row_q8_0_ref: per block of 32, d = absmax/127 (float32),
 * id = 1/d, q = roundf(x*id) (float32 products), d stored as fp16 before the 32 int8 values.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const nb = values.length / QK8_0;
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  const fr = Math.fround;
  for (let i = 0; i < nb; i++) {
    const base = i * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(values[base + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const o = i * Q8_0_BLOCK_BYTES;
    dv.setUint16(o, floatToHalf(d), true);
    for (let j = 0; j < QK8_0; j++) dv.setInt8(o + 2 + j, roundf(fr(values[base + j] * id)));
  }
  return out;
}

export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const nb = bytes.length / Q8_0_BLOCK_BYTES;
  const out = new Float32Array(nb * QK8_0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BLOCK_BYTES;
    const d = halfToFloat(dv.getUint16(o, true));
    for (let j = 0; j < QK8_0; j++) out[i * QK8_0 + j] = dv.getInt8(o + 2 + j) * d;
  }
  return out;
}
