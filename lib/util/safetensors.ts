// A small safetensors reader/writer for adapters, goldens and tests (model weights go through the
// native mmap reader). Format: u64 LE header length, JSON header, raw little-endian data.
import { readFileSync } from 'node:fs';
import { LorafitError } from '../errors.js';
import { writeFileAtomic } from './fs-atomic.js';
import { bf16ToFloat, halfToFloat } from './float16.js';

export type StDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ITEM_SIZE: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface StTensor {
  dtype: StDtype;
  shape: number[];
  /** Raw little-endian bytes (a view into the file buffer when read). */
  bytes: Uint8Array;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

const MAX_HEADER = 100 * 1024 * 1024;

export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): StFile {
  const fail = (msg: string): never => {
    throw new LorafitError('E_SAFETENSORS', `${file}: ${msg}`);
  };
  if (buf.length < 8) fail(`truncated: ${buf.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER) fail(`header length ${headerLen} exceeds the 100 MB limit`);
  if (8 + headerLen > buf.length) fail(`header length ${headerLen} runs past the end of the file (${buf.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const data = buf.subarray(8 + headerLen);
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !Object.hasOwn(ITEM_SIZE, e.dtype)) fail(`tensor '${name}': unsupported dtype ${String(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor '${name}': bad shape`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) fail(`tensor '${name}': bad data_offsets`);
    const [begin, end] = offs as [number, number];
    const dtype = e.dtype as StDtype;
    const shape = e.shape as number[];
    const need = shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
    if (begin > end || end > data.length) fail(`tensor '${name}': data_offsets [${begin}, ${end}] lie outside the data section (${data.length} bytes)`);
    if (end - begin !== need) fail(`tensor '${name}': holds ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${need}`);
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype, shape, bytes: data.subarray(begin, end) });
  }
  // By begin, then end: a zero-size tensor at the boundary where the next one begins ([x, x] then
  // [x, y]) is valid (the Python/Rust reader accepts it) whatever the header's key order.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) fail(`tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): StFile {
  return parseSafetensors(readFileSync(file), file);
}

/** Serialises tensors (sorted by name, as the Python writer does) with optional string metadata. */
export function serializeSafetensors(tensors: Map<string, StTensor> | Record<string, StTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const need = t.shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[t.dtype];
    if (t.bytes.length !== need) throw new LorafitError('E_SHAPE', `tensor '${name}': ${t.bytes.length} bytes for ${t.dtype} [${t.shape.join(', ')}] (needs ${need})`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + need] };
    offset += need;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);  // align the data to 8 bytes
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of entries) {
    out.set(t.bytes, pos);
    pos += t.bytes.length;
  }
  return out;
}

export async function writeSafetensors(file: string, tensors: Map<string, StTensor> | Record<string, StTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

/** A tensor's values as float32 (F32/F16/BF16/F64). */
export function toFloat32(t: StTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'F32': out[i] = dv.getFloat32(i * 4, true); break;
      case 'F64': out[i] = dv.getFloat64(i * 8, true); break;
      case 'BF16': out[i] = bf16ToFloat(dv.getUint16(i * 2, true)); break;
      case 'F16': out[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
      default: throw new LorafitError('E_SAFETENSORS', `toFloat32: dtype ${t.dtype} is not floating`);
    }
  }
  return out;
}

/** A tensor's values as bigint-free numbers (I64/I32/I16/I8/U8/BOOL). */
export function toIntArray(t: StTensor): number[] {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'I64': out[i] = Number(dv.getBigInt64(i * 8, true)); break;
      case 'I32': out[i] = dv.getInt32(i * 4, true); break;
      case 'I16': out[i] = dv.getInt16(i * 2, true); break;
      case 'I8': out[i] = dv.getInt8(i); break;
      case 'U8': case 'BOOL': out[i] = dv.getUint8(i); break;
      default: throw new LorafitError('E_SAFETENSORS', `toIntArray: dtype ${t.dtype} is not an integer type`);
    }
  }
  return out;
}

export function fromFloat32(values: Float32Array, shape: number[]): StTensor {
  return { dtype: 'F32', shape, bytes: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

export function fromInt64(values: number[] | BigInt64Array, shape: number[]): StTensor {
  const arr = values instanceof BigInt64Array ? values : BigInt64Array.from(values, (v) => BigInt(v));
  return { dtype: 'I64', shape, bytes: new Uint8Array(arr.buffer.slice(0)) };
}
