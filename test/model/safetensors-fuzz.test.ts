// Mutated safetensors files thrown at both readers: the native mmap reader (there is no native
// entry point for the reader alone, so through Model.load of a copy of the llama fixture) and the
// TypeScript parseSafetensors. Each mutant must either load or fail with a LorafitError of code
// E_SAFETENSORS / E_SHAPE / E_MODEL_CONFIG: never another error type, never a crash, no leaked
// file descriptors. Mutations (seeded): byte flips in the header, JSON edits (huge / negative /
// fractional / non-numeric offsets, wrong dtypes, bad shapes, nested junk, swapped or deleted
// fields, duplicate keys), textual edits of the JSON, truncations and length-field mutations.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { LorafitError } from '../../lib/errors.js';
import { Model } from '../../lib/model/model.js';
import { parseSafetensors } from '../../lib/util/safetensors.js';
import { assemble, copyFolder, mulberry32, openFds, readRaw } from '../helpers/corrupt.js';
import { HF } from '../helpers/golden.js';

const N = 1200;
const SEED = 20240611;
const ALLOWED = new Set(['E_SAFETENSORS', 'E_SHAPE', 'E_MODEL_CONFIG']);

const dir = copyFolder(join(HF, 'llama', 'model'), 'fuzz');
const file = join(dir, 'model.safetensors');
const original = readFileSync(file);
const { header: baseHeader, data } = readRaw(file);
const headerText = JSON.stringify(baseHeader);
const names = Object.keys(baseHeader).filter((k) => k !== '__metadata__');
afterAll(() => rmSync(dirname(dir), { recursive: true, force: true }));

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

function nested(r: Rng, depth: number): unknown {
  if (depth <= 0) return pick(r, [0, 'x', null, true, -1.5, {}, []]);
  return pick(r, ['arr', 'obj'] as const) === 'arr' ? [nested(r, depth - 1)] : { k: nested(r, depth - 1) };
}

const WEIRD_NUMBERS = [-1, -0.5, 0.5, 1.5, 1e20, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 427264, 427265, 0, 4294967296];
const WEIRD_VALUES: unknown[] = ['12', null, true, [], {}, [1], [1, 2, 3], [[0, 4]], { a: 1 }, 'NaN'];
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'f32', '', 'toString', 'constructor', '__proto__', 'F32 '];

/** One JSON-level mutation of a parsed header. */
function jsonEdit(r: Rng, h: Record<string, any>): void {
  const name = pick(r, names);
  const e = h[name];
  switch (int(r, 14)) {
    case 0: e.data_offsets[int(r, 2)] = pick(r, WEIRD_NUMBERS); break;
    case 1: e.data_offsets = pick(r, WEIRD_VALUES); break;
    case 2: e.dtype = pick(r, [...DTYPES, 5, null, ['F32']]); break;
    case 3: e.shape = pick(r, [[], [0], [-1, 64], [64.5], [1e20, 1e20], [2 ** 31, 2 ** 31], ['64'], null, 'x', [[64]], [0, 1e300], [16384]]); break;
    case 4: e.shape[int(r, e.shape.length)] = pick(r, WEIRD_NUMBERS); break;
    case 5: delete e[pick(r, ['dtype', 'shape', 'data_offsets'])]; break;
    case 6: h[name] = nested(r, 1 + int(r, 100)); break;  // deeper than the native 64-level limit half of the time
    case 7: { const other = h[pick(r, names)]; [e.data_offsets, other.data_offsets] = [other.data_offsets, e.data_offsets]; break; }
    case 8: { const shift = pick(r, [-4, 4, -1, 1, 16384, -16384]); e.data_offsets = e.data_offsets.map((o: number) => o + shift); break; }
    case 9: h.__metadata__ = pick(r, [5, null, [], { format: 5 }, { format: { x: 1 } }, 'pt', nested(r, 5)]); break;
    case 10: h[pick(r, ['', '__proto__', 'constructor', 'x'.repeat(1000), '\u0000', 'ünïcödé'])] = pick(r, [e, { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 0] }, 1]); break;
    case 11: delete h[name]; break;
    case 12: e.extra = nested(r, int(r, 10)); break;
    default: h[name] = { ...e, shape: [...e.shape].reverse() };
  }
}

/** A mutated file (the full bytes). */
function mutant(r: Rng): Buffer {
  const kind = int(r, 6);
  if (kind === 0) {
    // random byte flips inside the header JSON
    const buf = Buffer.from(original);
    const hl = Number(buf.readBigUInt64LE(0));
    for (let i = 0, n = 1 + int(r, 8); i < n; i++) {
      const at = 8 + int(r, hl);
      buf[at] = r() < 0.5 ? buf[at] ^ (1 << int(r, 8)) : pick(r, [0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x2d, 0x30, 0x39, 0x65, 0x2e, 0x5c, 0x00, 0xff]);
    }
    return buf;
  }
  if (kind === 1 || kind === 2) {
    // JSON edits (one to three), then re-serialised
    const h = JSON.parse(headerText);
    for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
      try {
        jsonEdit(r, h);
      } catch {
        // an earlier edit replaced the entry this one wanted to touch; keep what we have
      }
    }
    return assemble(Buffer.from(JSON.stringify(h)), data);
  }
  if (kind === 3) {
    // textual edits of the JSON: splice in tokens the parser must cope with
    let t = headerText;
    for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
      const at = int(r, t.length);
      const del = int(r, 4);
      const ins = pick(r, ['', '"', '\\', '\\u', '\\ud800', '\\udc00x', '\\u00', '1e309', '-0', 'NaN', 'Infinity', '-Infinity', '+1', '1.', '.5', '0x10', '01', '[', ']', '{', '}', ',', ':', 'true', 'nul', ' ', '\t\n', '"__metadata__":{},', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', '\u00ff', '\ufffd']);
      t = t.slice(0, at) + ins + t.slice(at + del);
    }
    if (r() < 0.3) {
      // duplicate a tensor entry under the same name (JSON allows it; readers must not be confused)
      const n = pick(r, names);
      t = t.replace(/}$/, `,${JSON.stringify(n)}:${JSON.stringify({ dtype: 'F32', shape: [1], data_offsets: [0, 4] })}}`);
    }
    return assemble(Buffer.from(t, 'utf8'), data);
  }
  if (kind === 4) {
    // truncations: anywhere in the length field, the header, or the data
    const cut = pick(r, [int(r, 8), 8 + int(r, headerText.length), 8 + headerText.length + int(r, data.length)]);
    return Buffer.from(original.subarray(0, cut));
  }
  // length-field mutations (header and data kept)
  const hl = BigInt(Buffer.byteLength(headerText));
  const len = pick(r, [0n, 1n, 2n, hl - 1n, hl + 1n, hl + 8n, hl - 8n, BigInt(original.length), BigInt(original.length - 8), 100n << 20n, (100n << 20n) + 1n, 1n << 63n, (1n << 64n) - 1n, BigInt(int(r, 2 ** 32))]);
  return assemble(Buffer.from(headerText), data, len);
}

function classify(e: unknown): string {
  if (e instanceof LorafitError) return ALLOWED.has(e.code) ? e.code : `bad code ${e.code}: ${e.message}`;
  return `not a LorafitError: ${String(e)}`;
}

it(`${N} mutated headers: both readers load or refuse with E_SAFETENSORS/E_SHAPE/E_MODEL_CONFIG`, async () => {
  const r = mulberry32(SEED);
  const fdsBefore = openFds();
  const outcomes = { native: new Map<string, number>(), ts: new Map<string, number>() };
  const bad: string[] = [];
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const buf = mutant(r);
    // TS reader (in memory)
    let ts: string;
    let tsMessage = '';
    try {
      parseSafetensors(buf, 'mutant.safetensors');
      ts = 'ok';
    } catch (e) {
      ts = classify(e);
      tsMessage = (e as Error).message;
    }
    count(outcomes.ts, ts);
    // native reader
    writeFileSync(file, buf);
    let nat: string;
    try {
      const m = await Model.load(dir);
      // a mutant that loads must still be a working model
      const out = await m.forward([[1, 2, 3]]);
      if (!(out.shape[2] === 256)) throw new Error('bad logits shape');
      await m.dispose();
      nat = 'ok';
    } catch (e) {
      nat = classify(e);
    }
    count(outcomes.native, nat);
    if (!ALLOWED.has(ts) && ts !== 'ok') bad.push(`#${i} ts: ${ts}`);
    if (!ALLOWED.has(nat) && nat !== 'ok') bad.push(`#${i} native: ${nat}`);
    // Where the TS reader refuses a file as a file (E_SAFETENSORS) and the native one loads it,
    // one of them is wrong (the native loader sees the same bytes).
    if (ts === 'E_SAFETENSORS' && nat === 'ok') bad.push(`#${i} TS refuses but native loads: ${tsMessage}`);
  }
  const ms = Date.now() - t0;
  console.log(`fuzz: ${N} mutants in ${ms} ms; native ${JSON.stringify([...outcomes.native])}; ts ${JSON.stringify([...outcomes.ts])}`);
  expect(bad).toEqual([]);
  // the mutations must exercise both outcomes, or the test proves little
  expect(outcomes.native.get('ok') ?? 0).toBeGreaterThan(10);
  expect(outcomes.native.get('E_SAFETENSORS') ?? 0).toBeGreaterThan(N / 2);
  expect(outcomes.native.get('E_SHAPE') ?? 0).toBeGreaterThan(3);
  expect(openFds()).toBeLessThanOrEqual(fdsBefore + 2);
  // and the untouched file still loads
  writeFileSync(file, original);
  await using m = await Model.load(dir);
  expect(m.config.vocabSize).toBe(256);
}, 60_000);

it('dtype names that are Object.prototype keys are unsupported dtypes, not NaN-sized ones', () => {
  for (const dtype of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    const h = JSON.parse(headerText);
    h['model.norm.weight'].dtype = dtype;
    expect(() => parseSafetensors(assemble(Buffer.from(JSON.stringify(h)), data), 'x.safetensors')).toThrow(`tensor 'model.norm.weight': unsupported dtype ${dtype}`);
  }
});

it('zero-size tensors: accepted at a boundary whatever the key order, refused inside another tensor (as the Python safetensors reader)', () => {
  // safetensors 0.x (Rust): {b: [0, 8], a: [0, 0]} loads; {b: [0, 8], a: [4, 4]} -> "invalid offset for tensor `a`"
  const file = (a: [number, number]) =>
    assemble(Buffer.from(JSON.stringify({ b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, a: { dtype: 'F32', shape: [0], data_offsets: a } })), new Uint8Array(8));
  const ok = parseSafetensors(file([0, 0]));
  expect(ok.tensors.get('a')!.shape).toEqual([0]);
  expect(ok.tensors.get('b')!.bytes.length).toBe(8);
  expect(parseSafetensors(file([8, 8])).tensors.size).toBe(2);
  expect(() => parseSafetensors(file([4, 4]))).toThrow("tensors 'b' and 'a' overlap");
});
