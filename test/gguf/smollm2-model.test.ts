// Model.load of the real SmolLM2-135M-Instruct Q4_1 GGUF against the real transformers loading the
// same file (from_pretrained(dir, gguf_file=..., dtype=float32), test/gguf/smollm2_model_ref.py):
// the config transformers builds from the metadata, fp32 logits on three prompts (token ids from
// transformers' own GGUF tokenizer), and greedy generation of 20 new tokens with the KV cache.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planGgufModel } from '../../lib/gguf/plan.js';
import { readGguf } from '../../lib/gguf/reader.js';
import { Model } from '../../lib/model/model.js';
import { Golden, maxAbsDiff } from '../helpers/golden.js';
import { python, scratchDir } from '../helpers/python.js';
import { smollm2Gguf } from './reference.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const out = scratchDir('smollm2-model');
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Ref {
  config: Record<string, unknown>;
  ids: number[][];
  gen: number[][];
  gen_min_margin: number[];
}
let file = '';
let ref: Ref;
let golden: Golden;
let model: Model;

beforeAll(async () => {
  file = smollm2Gguf();
  await run(python(), [fileURLToPath(new URL('./smollm2_model_ref.py', import.meta.url)), file, out], {
    env: { ...process.env, OMP_NUM_THREADS: '2', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 64 << 20,
  });
  ref = JSON.parse(readFileSync(join(out, 'reference.json'), 'utf8')) as Ref;
  golden = new Golden('smollm2', join(out, 'reference.safetensors'));
  model = await Model.load(file, { dtype: 'float32' });
}, 300_000);
afterAll(async () => {
  await model?.dispose();
});

describe('SmolLM2-135M-Instruct Q4_1 GGUF vs transformers', () => {
  it('the config is the one transformers builds from the metadata', async () => {
    const plan = await planGgufModel(await readGguf(file));
    const hf = ref.config;
    for (const [k, v] of Object.entries(plan.config)) {
      if (k === 'architectures') continue;
      if (k === 'rope_theta') expect((hf.rope_parameters as Record<string, unknown>).rope_theta, k).toBe(v);
      else expect(hf[k], k).toEqual(v);
    }
    expect(plan.config).toMatchObject({ model_type: 'llama', num_hidden_layers: 30, hidden_size: 576, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, tie_word_embeddings: true });
    expect(model.config).toMatchObject({ modelType: 'llama', numHiddenLayers: 30, hiddenSize: 576, headDim: 64, ropeTheta: 100000, tieWordEmbeddings: true, vocabSize: 49152 });
    expect(model.source).toMatchObject({ format: 'gguf', path: file, architecture: 'llama', quantTypes: ['Q4_1', 'F32', 'Q8_0'] });
    expect(model.dir).toBe(file);
    expect(model.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: 2, pad_token_id: 2 });
    expect(model.eosTokenIds).toEqual([2]);
  });

  // lorafit's fp32 frozen GEMMs run on oneDNN (native/cpu_matmul.h), transformers' on MKL: the
  // same products summed in another order, which moves these logits by up to ~2e-4. On MKL too
  // (LORAFIT_ONEDNN_FP32=0) lorafit is held to 1e-4.
  it('fp32 logits on every position of three prompts: within 1e-4 on MKL as transformers, 4e-4 on oneDNN', async () => {
    const logits = async (ids: number[]) => {
      const r = await model.forward([ids]);
      expect(r.shape).toEqual([1, ids.length, 49152]);
      return r.logits;
    };
    const onednn: number[] = [];
    const mkl: number[] = [];
    for (let i = 0; i < ref.ids.length; i++) {
      const ids = golden.ints(`ids.${i}`);
      expect(ids).toEqual(ref.ids[i]);
      const want = golden.floats(`logits.${i}`);
      onednn.push(maxAbsDiff(await logits(ids), want));
      process.env.LORAFIT_ONEDNN_FP32 = '0';
      try {
        mkl.push(maxAbsDiff(await logits(ids), want));
      } finally {
        delete process.env.LORAFIT_ONEDNN_FP32;
      }
    }
    const fmt = (d: number[]) => d.map((x) => x.toExponential(2)).join(', ');
    console.log(`SmolLM2 GGUF: max |logit diff| per prompt vs transformers: oneDNN ${fmt(onednn)}; MKL ${fmt(mkl)}`);
    for (const d of mkl) expect(d).toBeLessThan(1e-4);
    for (const d of onednn) expect(d).toBeLessThan(4e-4);
  });

  it('greedy generate() equals transformers generate() for 20 new tokens', async () => {
    for (let i = 0; i < ref.gen.length; i++) {
      const [tokens] = await model.generate(ref.ids[i], { maxNewTokens: 20, eosTokenId: [] });
      expect(tokens, `prompt ${i} (smallest top-1/top-2 margin ${ref.gen_min_margin[i]})`).toEqual(ref.gen[i]);
    }
  });
});
