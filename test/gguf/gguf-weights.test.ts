// The native GGUF load path (native/gguf_weights.cc + CausalLM::load from a WeightSource) on a
// small Llama that gguf-py's GGUFWriter wrote in 8 storage types, with Q/K rows (weights and
// biases) permuted as llama.cpp's converter does. The reference is what transformers' GGUF loader
// makes of the same file (dequantize + LlamaTensorProcessor), saved by the helper as an HF folder;
// and corrupt tensor tables, which must be rejected with E_GGUF naming the file and the tensor.
import { copyFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NativeGgufSource, NativeGgufTensor, NativeModel } from '../../lib/model/native.js';
import { scratchDir } from '../helpers/python.js';
import { rejects } from '../helpers/rejects.js';
import { bitsDiffer, loadFolder, loadGguf, reference } from './reference.js';

interface Tiny {
  gguf: string;
  hf: string;
  config: Record<string, unknown>;
  tensors: (NativeGgufTensor & { typeName: string })[];
}

const dir = scratchDir('gguf-weights');
let tiny: Tiny;
let source: NativeGgufSource;
const IDS = [1, 5, 9, 17, 33, 65, 2, 90, 4, 4, 7, 60];
// the native baton takes complete options (lib/ holds the defaults)
const NO_OPTIONS = { lastOnly: false, outputHiddenStates: false };

// Every test awaits the reference, so a missing Python fails each one with its message (a
// throwing beforeAll would only mark them skipped).
let ready: Promise<void> | undefined;
function setup(): Promise<void> {
  ready ??= (async () => {
    tiny = await reference<Tiny>('tiny', dir);
    source = { configJson: JSON.stringify(tiny.config), tensors: tiny.tensors.map(({ typeName: _, ...t }) => t) };
  })();
  return ready;
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function using2<T>(a: Promise<NativeModel>, b: Promise<NativeModel>, fn: (a: NativeModel, b: NativeModel) => Promise<T>): Promise<T> {
  const [x, y] = [await a, await b];
  try {
    return await fn(x, y);
  } finally {
    x.dispose();
    y.dispose();
  }
}

async function sameWeights(a: NativeModel, b: NativeModel): Promise<string[]> {
  expect(a.parameterNames()).toEqual(b.parameterNames());
  const bad: string[] = [];
  for (const name of a.parameterNames()) {
    const [x, y] = [await a.parameter(name), await b.parameter(name)];
    expect(x.shape, name).toEqual(y.shape);
    const d = bitsDiffer(x.data, y.data);
    if (d) bad.push(`${name}: ${d}`);
  }
  return bad;
}

describe('GGUF weights of a small Llama', () => {
  it('the file spans 8 storage types and permuted Q/K weights and biases', async () => {
    await setup();
    expect(new Set(tiny.tensors.map((t) => t.typeName))).toEqual(new Set(['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1']));
    const permuted = tiny.tensors.filter((t) => t.permuteHeads);
    expect(permuted.map((t) => t.name.split('.').slice(3).join('.')).sort()).toEqual(
      ['self_attn.k_proj.bias', 'self_attn.k_proj.bias', 'self_attn.k_proj.weight', 'self_attn.k_proj.weight',
        'self_attn.q_proj.bias', 'self_attn.q_proj.bias', 'self_attn.q_proj.weight', 'self_attn.q_proj.weight'],
    );
  });

  it('every weight is bit-for-bit what transformers loads from the GGUF (reverse Q/K permutation included)', async () => {
    await setup();
    await using2(loadGguf(tiny.gguf, source), loadFolder(tiny.hf), async (g, h) => {
      expect(await sameWeights(g, h)).toEqual([]);
      expect(g.warnings()).toEqual([]);
      const [x, y] = [await g.forward(IDS, [2, 6], NO_OPTIONS), await h.forward(IDS, [2, 6], NO_OPTIONS)];
      expect(bitsDiffer(x.logits, y.logits)).toBeUndefined();
    });
  });

  it('without permuteHeads the Q/K rows stay permuted (so the check above can fail)', async () => {
    await setup();
    const plain = { ...source, tensors: source.tensors.map(({ permuteHeads: _, ...t }) => t) };
    await using2(loadGguf(tiny.gguf, plain), loadFolder(tiny.hf), async (g, h) => {
      for (const name of ['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.weight', 'model.layers.0.self_attn.q_proj.bias']) {
        expect(bitsDiffer((await g.parameter(name)).data, (await h.parameter(name)).data), name).toBeDefined();
      }
      const v = 'model.layers.0.self_attn.v_proj.weight';
      expect(bitsDiffer((await g.parameter(v)).data, (await h.parameter(v)).data)).toBeUndefined();
    });
  });

  it('bfloat16 loads equal the HF folder loaded in bfloat16', async () => {
    await setup();
    await using2(loadGguf(tiny.gguf, source, { dtype: 'bfloat16' }), loadFolder(tiny.hf, { dtype: 'bfloat16' }), async (g, h) => {
      expect(await sameWeights(g, h)).toEqual([]);
    });
  });

  it('add: -1 on the norms (Gemma, stored by llama.cpp as w + 1) is one float32 subtraction a value', async () => {
    await setup();
    const norm = (n: string) => n.endsWith('layernorm.weight') || n === 'model.norm.weight';
    const shifted = { ...source, tensors: source.tensors.map((t) => (norm(t.name) ? { ...t, add: -1 } : t)) };
    await using2(loadGguf(tiny.gguf, shifted), loadFolder(tiny.hf), async (g, h) => {
      const names = g.parameterNames().filter(norm);
      expect(names.length).toBe(5);
      for (const name of names) {
        // |w| ~ 1: w - 1 is exact in double, so fround gives the float32 subtraction's result
        const want = (await h.parameter(name)).data.map((v) => Math.fround(v - 1));
        expect(bitsDiffer((await g.parameter(name)).data, want), name).toBeUndefined();
      }
      const q = 'model.layers.0.self_attn.q_proj.weight';
      expect(bitsDiffer((await g.parameter(q)).data, (await h.parameter(q)).data)).toBeUndefined();
    });
  });

  it.each(['nf4', 'int8'])('quantize %s at load: the same quantized base as from safetensors', async (quantize) => {
    await setup();
    await using2(loadGguf(tiny.gguf, source, { quantize }), loadFolder(tiny.hf, { quantize }), async (g, h) => {
      expect(g.quantization()).toEqual(h.quantization());
      expect(await g.storageReport()).toEqual(await h.storageReport());
      expect(await sameWeights(g, h)).toEqual([]);  // quantized projections come back dequantized
      if (quantize === 'nf4') {
        const name = 'model.layers.0.self_attn.q_proj.weight';
        expect(await g.quantizedState(name)).toEqual(await h.quantizedState(name));
      }
    });
  });
});

describe('corrupt GGUF tensor tables', () => {
  const edit = (name: string, change: Partial<NativeGgufTensor>): NativeGgufSource => ({
    ...source,
    tensors: source.tensors.map((t) => (t.name === name ? { ...t, ...change } : t)),
  });
  const last = () => source.tensors.reduce((a, b) => (b.offset > a.offset ? b : a));

  it('data beyond the end of the file, or a truncated file, names the tensor', async () => {
    await setup();
    const size = statSync(tiny.gguf).size;
    const t = last();
    await rejects(loadGguf(tiny.gguf, edit(t.name, { offset: size - 10 })), 'E_GGUF', tiny.gguf, `tensor '${t.name}'`, 'outside the file', 'truncated');
    await rejects(loadGguf(tiny.gguf, edit(t.name, { offset: 2 ** 53 - 1 })), 'E_GGUF', `tensor '${t.name}'`, 'outside the file');
    const cut = join(dir, 'cut.gguf');
    copyFileSync(tiny.gguf, cut);
    truncateSync(cut, t.offset + 5);
    await rejects(loadGguf(cut, source), 'E_GGUF', cut, `tensor '${t.name}'`, `(${t.offset + 5} bytes): truncated`);
    await rejects(loadGguf(join(dir, 'absent.gguf'), source), 'E_GGUF', 'absent.gguf', 'cannot open');
  });

  it('an unknown type, a shape that is not whole blocks, a zero dimension, duplicate names are refused', async () => {
    await setup();
    const q8 = tiny.tensors.find((t) => t.typeName === 'Q8_0')!;
    await rejects(loadGguf(tiny.gguf, edit(q8.name, { type: 99 })), 'E_GGUF', `tensor '${q8.name}'`, 'unsupported ggml type 99');
    await rejects(loadGguf(tiny.gguf, edit(q8.name, { type: 9 })), 'E_GGUF', `tensor '${q8.name}'`, 'unsupported ggml type 9');
    await rejects(loadGguf(tiny.gguf, edit(q8.name, { shape: [128, 16] })), 'E_GGUF', `tensor '${q8.name}'`,
      'innermost dimension 16', 'Q8_0 block size 32');
    await rejects(loadGguf(tiny.gguf, edit(q8.name, { shape: [0, 64] })), 'E_GGUF', `tensor '${q8.name}'`, 'not positive');
    await rejects(loadGguf(tiny.gguf, edit(q8.name, { shape: [] })), 'E_GGUF', `tensor '${q8.name}'`, 'no dimensions');
    const dup = { ...source, tensors: [...source.tensors, source.tensors[3]] };
    await rejects(loadGguf(tiny.gguf, dup), 'E_GGUF', `tensor '${source.tensors[3].name}'`, 'listed twice');
    await rejects(loadGguf(tiny.gguf, edit('model.layers.0.self_attn.q_proj.weight', { permuteHeads: 3 })), 'E_GGUF',
      "tensor 'model.layers.0.self_attn.q_proj.weight'", 'head permutation', '2 * 3 heads');
  });

  it('malformed entries of the option are refused before any work', async () => {
    await setup();
    const q = 'model.layers.0.self_attn.q_proj.weight';
    await rejects(loadGguf(tiny.gguf, edit(q, { offset: -1 })), 'E_GGUF', `tensors[5] (tensor '${q}')`, 'offset must be a non-negative integer');
    await rejects(loadGguf(tiny.gguf, edit(q, { offset: 1.5 })), 'E_GGUF', 'offset must be a non-negative integer');
    await rejects(loadGguf(tiny.gguf, edit(q, { shape: ['64'] as unknown as number[] })), 'E_GGUF', 'shape must be');
    await rejects(loadGguf(tiny.gguf, edit(q, { permuteHeads: -2 })), 'E_GGUF', 'permuteHeads');
    await rejects(loadGguf(tiny.gguf, edit(q, { add: Number.NaN })), 'E_GGUF', `tensor '${q}'`, 'add must be a finite number');
    await rejects(loadGguf(tiny.gguf, edit(q, { add: 1e39 })), 'E_GGUF', `tensor '${q}'`, 'add must be a finite number');
    await rejects(loadGguf(tiny.gguf, { tensors: source.tensors } as unknown as NativeGgufSource), 'E_GGUF', 'configJson');
    await rejects(loadGguf(tiny.gguf, { ...source, configJson: '{' }), 'E_MODEL_CONFIG', tiny.gguf);
  });

  it('a weight missing or of the wrong shape names it', async () => {
    await setup();
    const without = (name: string) => ({ ...source, tensors: source.tensors.filter((t) => t.name !== name) });
    await rejects(loadGguf(tiny.gguf, without('model.norm.weight')), 'E_GGUF', tiny.gguf, "'model.norm.weight' is missing from the GGUF file");
    await rejects(loadGguf(tiny.gguf, without('lm_head.weight')), 'E_GGUF', tiny.gguf, "tie_word_embeddings is false, but 'lm_head.weight' is missing");
    await rejects(loadGguf(tiny.gguf, edit('model.norm.weight', { shape: [32] })), 'E_SHAPE', "'model.norm.weight' has shape [32]", '[64]');
  });

  it('after all that the process is fine: a good load still matches', async () => {
    await setup();
    await using2(loadGguf(tiny.gguf, source), loadFolder(tiny.hf), async (g, h) => {
      const [x, y] = [await g.forward(IDS, [2, 6], NO_OPTIONS), await h.forward(IDS, [2, 6], NO_OPTIONS)];
      expect(bitsDiffer(x.logits, y.logits)).toBeUndefined();
    });
  });
});
