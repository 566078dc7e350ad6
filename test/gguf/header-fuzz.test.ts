// Mutated GGUF files thrown at readGguf and at Model.load (header reader -> config/tensor mapping
// -> native loader -> a forward pass). Every mutant must either load (and run) or be refused with
// a LorafitError of code E_GGUF (E_MODEL_CONFIG / E_SHAPE where the native loader refuses the
// mapped config or a shape): never another error, never a crash or hang, no leaked descriptors.
// The base file is a tiny Q8_0 llama with a tokenizer vocabulary (string, float and int arrays);
// mutations (seeded) target the fields a parser walks: byte flips in the header, truncations,
// counts and string/array lengths (0, +-1, 2^32, 2^63, 2^64-1), value and item types, tensor
// dimension counts, dimensions, ggml types and offsets (misaligned, past the end), metadata values
// (hyperparameters out of range, NaN floats), inserted bytes, duplicated keys, and data flips.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { LorafitError } from '../../lib/errors.js';
import { readGguf } from '../../lib/gguf/reader.js';
import { Model } from '../../lib/model/model.js';
import { mulberry32, openFds } from '../helpers/corrupt.js';
import { scratchDir } from '../helpers/python.js';
import { writeTinyGguf } from './tiny-gguf.js';

const N = 1200;
const SEED = 20261201;
const ALLOWED = new Set(['E_GGUF', 'E_MODEL_CONFIG', 'E_SHAPE']);

const dir = scratchDir('gguf-fuzz');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const baseFile = join(dir, 'base.gguf');
writeTinyGguf(baseFile, { dtype: 'Q8_0', tokens: 64, meta: { 'general.alignment': 32 } });
const original = readFileSync(baseFile);
const file = join(dir, 'mutant.gguf');

type Kind = 'count' | 'vtype' | 'u32' | 'f32' | 'ndims' | 'dim' | 'ggml' | 'offset' | 'version';
interface Field { kind: Kind; pos: number; size: 4 | 8; key?: string }

/** Walks the valid base file and records where each field a reader interprets lies. */
function fields(buf: Buffer): { fields: Field[]; kvs: { start: number; end: number }[]; headerEnd: number } {
  const out: Field[] = [];
  const kvs: { start: number; end: number }[] = [];
  let p = 4;
  out.push({ kind: 'version', pos: p, size: 4 });
  p += 4;
  const nT = Number(buf.readBigUInt64LE(p));
  out.push({ kind: 'count', pos: p, size: 8 });
  p += 8;
  const nKv = Number(buf.readBigUInt64LE(p));
  out.push({ kind: 'count', pos: p, size: 8 });
  p += 8;
  const str = (): string => {
    const n = Number(buf.readBigUInt64LE(p));
    out.push({ kind: 'count', pos: p, size: 8 });
    const s = buf.subarray(p + 8, p + 8 + n).toString('utf8');
    p += 8 + n;
    return s;
  };
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number, key: string): void => {
    if (type === 8) str();
    else if (type === 9) {
      const item = buf.readUInt32LE(p);
      out.push({ kind: 'vtype', pos: p, size: 4, key });
      p += 4;
      const n = Number(buf.readBigUInt64LE(p));
      out.push({ kind: 'count', pos: p, size: 8, key });
      p += 8;
      for (let i = 0; i < n; i++) {
        if (item === 8) {
          const len = Number(buf.readBigUInt64LE(p));
          if (i < 4) out.push({ kind: 'count', pos: p, size: 8, key });
          p += 8 + len;
        } else p += SIZES[item];
      }
    } else {
      if (type === 4) out.push({ kind: 'u32', pos: p, size: 4, key });
      if (type === 6) out.push({ kind: 'f32', pos: p, size: 4, key });
      p += SIZES[type];
    }
  };
  for (let i = 0; i < nKv; i++) {
    const start = p;
    const key = str();
    const type = buf.readUInt32LE(p);
    out.push({ kind: 'vtype', pos: p, size: 4, key });
    p += 4;
    value(type, key);
    kvs.push({ start, end: p });
  }
  for (let i = 0; i < nT; i++) {
    str();
    const nd = buf.readUInt32LE(p);
    out.push({ kind: 'ndims', pos: p, size: 4 });
    p += 4;
    for (let d = 0; d < nd; d++, p += 8) out.push({ kind: 'dim', pos: p, size: 8 });
    out.push({ kind: 'ggml', pos: p, size: 4 });
    p += 4;
    out.push({ kind: 'offset', pos: p, size: 8 });
    p += 8;
  }
  return { fields: out, kvs, headerEnd: p };
}

const layout = fields(original);

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

function weird(r: Rng, f: Field, old: bigint): bigint {
  const common = [0n, 1n, old + 1n, old - 1n, old * 2n, 1n << 31n, (1n << 32n) - 1n, BigInt(int(r, 2 ** 32))];
  const wide = [1n << 32n, 1n << 40n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, (1n << 64n) - 1n, BigInt(original.length), BigInt(original.length) * 256n];
  switch (f.kind) {
    case 'version': return pick(r, [0n, 1n, 2n, 4n, 3n << 24n, (1n << 32n) - 1n]);
    case 'vtype': return pick(r, [0n, 1n, 4n, 6n, 7n, 8n, 9n, 10n, 12n, 13n, 255n, (1n << 32n) - 1n]);
    case 'ndims': return pick(r, [0n, 1n, 2n, 3n, 4n, 5n, 64n, (1n << 32n) - 1n]);
    case 'ggml': return pick(r, [0n, 1n, 2n, 3n, 4n, 5n, 8n, 12n, 14n, 16n, 23n, 30n, 31n, 39n, 99n, (1n << 31n) - 1n, (1n << 32n) - 1n]);
    case 'offset': return pick(r, [old + 1n, old + 16n, old + 32n, old - 32n, old + 4096n, 0n, BigInt(original.length), 1n << 63n, (1n << 64n) - 1n]);
    case 'u32': return pick(r, [...common, 2n, 3n, 7n, 8n, 64n]);
    default: return pick(r, [...common, ...wide]);
  }
}

function write(buf: Buffer, f: Field, v: bigint): void {
  if (f.size === 8) buf.writeBigUInt64LE(BigInt.asUintN(64, v), f.pos);
  else buf.writeUInt32LE(Number(BigInt.asUintN(32, v)), f.pos);
}

function mutant(r: Rng): Buffer {
  const kind = int(r, 10);
  if (kind === 0) {
    // byte flips inside the header
    const buf = Buffer.from(original);
    for (let i = 0, n = 1 + int(r, 8); i < n; i++) {
      const at = int(r, layout.headerEnd);
      buf[at] = r() < 0.5 ? buf[at] ^ (1 << int(r, 8)) : pick(r, [0x00, 0xff, 0x7f, 0x80, 0x01, 0x20]);
    }
    return buf;
  }
  if (kind === 1) {
    // truncations: in the header mostly, sometimes in the data
    const cut = r() < 0.7 ? int(r, layout.headerEnd) : layout.headerEnd + int(r, original.length - layout.headerEnd);
    return Buffer.from(original.subarray(0, cut));
  }
  if (kind <= 5) {
    // one to three interpreted fields set to hostile values
    const buf = Buffer.from(original);
    for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
      const f = pick(r, layout.fields);
      const old = f.size === 8 ? buf.readBigUInt64LE(f.pos) : BigInt(buf.readUInt32LE(f.pos));
      if (f.kind === 'f32' && r() < 0.5) buf.writeFloatLE(pick(r, [NaN, Infinity, -Infinity, -1, 0, 1e-45, 3e38]), f.pos);
      else write(buf, f, weird(r, f, old));
    }
    return buf;
  }
  if (kind === 6) {
    // bytes inserted into or deleted from the header (everything after shifts)
    const at = 4 + int(r, layout.headerEnd - 4);
    const ins = Buffer.from(Array.from({ length: int(r, 9) }, () => int(r, 256)));
    return Buffer.concat([original.subarray(0, at), ins, original.subarray(at + int(r, 9))]);
  }
  if (kind === 7) {
    // a metadata pair duplicated (kv count raised to match): a key that appears twice
    const kv = pick(r, layout.kvs);
    const buf = Buffer.concat([original.subarray(0, kv.end), original.subarray(kv.start, kv.end), original.subarray(kv.end)]);
    buf.writeBigUInt64LE(buf.readBigUInt64LE(16) + 1n, 16);
    return buf;
  }
  if (kind === 8) {
    // data flips: the header stays valid; scales can become inf/NaN
    const buf = Buffer.from(original);
    for (let i = 0, n = 1 + int(r, 32); i < n; i++) {
      const at = layout.headerEnd + int(r, original.length - layout.headerEnd);
      buf[at] = int(r, 256);
    }
    return buf;
  }
  // garbage appended, or the whole file replaced by a short random one with the magic
  if (r() < 0.5) return Buffer.concat([original, Buffer.from(Array.from({ length: 1 + int(r, 64) }, () => int(r, 256)))]);
  return Buffer.concat([Buffer.from('GGUF'), Buffer.from(Array.from({ length: int(r, 64) }, () => int(r, 256)))]);
}

function classify(e: unknown): string {
  if (e instanceof LorafitError) return ALLOWED.has(e.code) ? e.code : `bad code ${e.code}: ${e.message}`;
  return `not a LorafitError: ${String(e)}`;
}

it(`${N} mutated GGUF files: readGguf and Model.load load (and run) or refuse with E_GGUF`, async () => {
  const r = mulberry32(SEED);
  const fdsBefore = openFds();
  const outcomes = { reader: new Map<string, number>(), load: new Map<string, number>() };
  const bad: string[] = [];
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    writeFileSync(file, mutant(r));
    let rd: string;
    try {
      await readGguf(file);
      rd = 'ok';
    } catch (e) {
      rd = classify(e);
    }
    count(outcomes.reader, rd);
    let ld: string;
    try {
      const m = await Model.load(file);
      try {
        const out = await m.forward([[1, 2, 3]]);
        if (out.shape[0] !== 1 || out.shape[1] !== 3 || out.shape[2] !== m.config.vocabSize) throw new Error(`bad logits shape ${out.shape}`);
      } finally {
        await m.dispose();
      }
      ld = 'ok';
    } catch (e) {
      ld = classify(e);
    }
    count(outcomes.load, ld);
    if (rd !== 'ok' && rd !== 'E_GGUF') bad.push(`#${i} readGguf: ${rd}`);
    if (ld !== 'ok' && !ALLOWED.has(ld)) bad.push(`#${i} Model.load: ${ld}`);
    if (rd !== 'ok' && ld === 'ok') bad.push(`#${i} readGguf refuses but Model.load loads`);
  }
  console.log(`gguf fuzz: ${N} mutants in ${Date.now() - t0} ms; readGguf ${JSON.stringify([...outcomes.reader])}; Model.load ${JSON.stringify([...outcomes.load])}`);
  expect(bad).toEqual([]);
  expect(outcomes.load.get('ok') ?? 0).toBeGreaterThan(50);
  expect(outcomes.load.get('E_GGUF') ?? 0).toBeGreaterThan(N / 2);
  expect(openFds()).toBeLessThanOrEqual(fdsBefore + 2);
  // the untouched file still loads
  writeFileSync(file, original);
  await using m = await Model.load(file);
  expect(m.config.vocabSize).toBe(64);
}, 120_000);
