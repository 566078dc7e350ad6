// Crafting broken model folders: copy a fixture to a scratch dir, then rewrite a safetensors
// header (the data bytes stay as they are, only the JSON and/or the length field change) or a
// JSON file of the folder.
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type RawHeader = Record<string, unknown>;

/** A safetensors file split into its parsed header and its data section (the bytes after the header). */
export function readRaw(file: string): { header: RawHeader; data: Buffer } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as RawHeader, data: buf.subarray(8 + n) };
}

/** u64 LE length + header bytes + data. `lengthField` overrides the length written (default: the true one). */
export function assemble(headerBytes: Uint8Array, data: Uint8Array, lengthField?: bigint): Buffer {
  const out = Buffer.alloc(8 + headerBytes.length + data.length);
  out.writeBigUInt64LE(lengthField ?? BigInt(headerBytes.length), 0);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** Rewrites the JSON header of `file` in place (edit mutates or returns a replacement); the data is kept. */
export function rewriteHeader(file: string, edit: (h: RawHeader) => RawHeader | void, options: { lengthField?: bigint } = {}): void {
  const { header, data } = readRaw(file);
  const next = edit(header) ?? header;
  writeFileSync(file, assemble(Buffer.from(JSON.stringify(next), 'utf8'), data, options.lengthField));
}

/** Rewrites a JSON file (config.json, index, adapter_config.json) in place. */
export function rewriteJson(file: string, edit: (j: Record<string, unknown>) => Record<string, unknown> | void): void {
  const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(edit(j) ?? j, null, 2));
}

/** A scratch copy of a folder; returns the copy's path. */
export function copyFolder(src: string, prefix = 'corrupt'): string {
  const dir = join(mkdtempSync(join(tmpdir(), `lorafit-${prefix}-`)), 'model');
  cpSync(src, dir, { recursive: true });
  return dir;
}

/** Deterministic PRNG (mulberry32) for fuzzing and seeded tensors: the library's own. */
export { prng as mulberry32 } from '../../lib/train/random.js';

/** Open file descriptors of this process (Linux), to catch leaks on failed loads. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}
