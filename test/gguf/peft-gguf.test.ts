// The GGUF base and the Python stack, both directions, on the real SmolLM2-135M-Instruct Q4_1 GGUF:
// - an adapter lorafit trained on the file (4 steps, all-linear r=8, saved as `lorafit train` saves
//   it: base_model_name_or_path = the .gguf path) loads in PEFT over transformers' dequantized copy
//   of the same file (from_pretrained(dir, gguf_file=..., dtype=float32) + PeftModel.from_pretrained)
//   with lorafit's logits (1e-4);
// - `lorafit merge --model x.gguf --adapter A --out DIR` writes an HF folder that transformers
//   loads with the logits of lorafit's merged forward (2.5e-4, twice what merging itself moves them) and AutoTokenizer loads with the ids of
//   transformers' own GGUF tokenizer (texts and chat template); lorafit loads it back too.
// test/gguf/peft_gguf_ref.py runs the Python side.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { serializeSafetensors } from '../../lib/util/safetensors.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { ensureBuilt, runCli } from '../cli/helpers.js';
import { Golden, maxAbsDiff } from '../helpers/golden.js';
import { python, scratchDir } from '../helpers/python.js';
import { smollm2Gguf } from './reference.js';
import { trainSmollm2Adapter } from './smollm2-adapter.js';

const run = promisify(execFile);
const dir = scratchDir('peft-gguf');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ref {
  peft_warnings: string[];
  num_lora_tensors_loaded: number;
  adapter_keys_not_loaded: string[];
  lora_params_not_in_file: string[];
  lora_params_value_mismatch_vs_file: string[];
  peft_target_modules: string[];
  auto_peft: string;
  merged_config: Record<string, unknown>;
  gguf_config: Record<string, unknown>;
  merged_tied: boolean;
  tokenizer_class: string;
  text_ids: { gguf: number[][]; merged: number[][] };
  chat_ids: { gguf: number[]; merged: number[] };
  special: Record<'gguf' | 'merged', Record<string, string | null>>;
  texts: string[];
  chat: Array<{ role: 'user' | 'assistant'; content: string }>;
}

const file = smollm2Gguf();
let model: Model;
let tokenizer: Tokenizer;
let adapterDir: string;
let mergedDir: string;
let prompts: number[][];
let lorafitAdapter: Float32Array[]; // lorafit, adapter active
let lorafitMerged: Float32Array[]; // lorafit after mergeAndUnload
let lorafitBase: Float32Array[];
let ref: Ref;
let golden: Golden;
let cliMerge = '';

beforeAll(async () => {
  const py = python(); // fails first, before the slow part, when the venv is not configured
  ensureBuilt();
  model = await Model.load(file, { dtype: 'float32' });
  tokenizer = await Tokenizer.load(file);
  const trained = await trainSmollm2Adapter(model, tokenizer, file, dir);
  adapterDir = trained.dir;
  await trained.adapter.delete();
  prompts = [
    await tokenizer.encodeChat([{ role: 'user', content: 'What is the best way to spend a rainy afternoon?' }], { addGenerationPrompt: true }),
    await tokenizer.encode('The quick brown fox jumps over the lazy dog. Once upon a time'),
  ];
  const logits = async () => Promise.all(prompts.map(async (p) => (await model.forward([p])).logits));
  lorafitBase = await logits();
  const saved = await LoraAdapter.load(model, adapterDir, { name: 'saved' });
  lorafitAdapter = await logits();
  await saved.mergeAndUnload();
  lorafitMerged = await logits();

  const r = await runCli(['merge', '--model', file, '--adapter', adapterDir, '--out', join(dir, 'merged')], { timeoutMs: 300_000 });
  cliMerge = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`lorafit merge failed:\n${cliMerge}`);
  mergedDir = join(dir, 'merged');

  const inputs = join(dir, 'inputs.safetensors');
  const tensors = Object.fromEntries(prompts.map((p, i) => [`ids.${i}`, { dtype: 'I64' as const, shape: [p.length], bytes: new Uint8Array(BigInt64Array.from(p.map(BigInt)).buffer) }]));
  writeFileSync(inputs, serializeSafetensors(tensors));
  await run(py, [fileURLToPath(new URL('./peft_gguf_ref.py', import.meta.url)), file, adapterDir, mergedDir, inputs, dir], {
    env: { ...process.env, OMP_NUM_THREADS: '2', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 64 << 20,
  });
  ref = JSON.parse(readFileSync(join(dir, 'peft_gguf.json'), 'utf8')) as Ref;
  golden = new Golden('peft-gguf', join(dir, 'peft_gguf.safetensors'));
}, 900_000);
afterAll(async () => {
  await model?.dispose();
});

describe('an adapter trained on the SmolLM2 GGUF, in PEFT over transformers\' copy of the same file', () => {
  it('PEFT loads every tensor by name (target modules q/k/v/o/gate/up/down_proj) and warns of nothing about the adapter', () => {
    const cfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    expect(cfg.base_model_name_or_path).toBe(file);
    expect(ref.num_lora_tensors_loaded).toBe(30 * 7 * 2);
    expect(ref.adapter_keys_not_loaded).toEqual([]);
    expect(ref.lora_params_not_in_file).toEqual([]);
    expect(ref.lora_params_value_mismatch_vs_file).toEqual([]);
    expect(ref.peft_target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    // PEFT's own deprecation notices (e.g. transformers renaming is_gradient_checkpointing) are not about the adapter
    expect(ref.peft_warnings.filter((w) => !/^(Deprecation|Future)Warning: /.test(w) && !/deprecated/.test(w))).toEqual([]);
    // What base_model_name_or_path can do: PeftModel.from_pretrained(base, dir) ignores it;
    // AutoPeftModelForCausalLM cannot open a .gguf path (transformers needs gguf_file=), so a PEFT
    // user loads the base with from_pretrained(folder, gguf_file=...) first, as this test does.
    console.log(`AutoPeftModelForCausalLM.from_pretrained(adapter): ${ref.auto_peft}`);
  });

  // 4e-4: lorafit's fp32 GEMMs run on oneDNN and transformers' on MKL, which alone moves these
  // logits by up to ~2e-4 (test/gguf/smollm2-model.test.ts holds the MKL path to 1e-4)
  it('logits equal lorafit\'s with the adapter within 4e-4 (and the adapter moves them)', () => {
    const diffs = prompts.map((_, i) => maxAbsDiff(lorafitAdapter[i], golden.floats(`peft.logits.${i}`)));
    const moved = prompts.map((_, i) => maxAbsDiff(lorafitAdapter[i], lorafitBase[i]));
    console.log(`PEFT on the GGUF base vs lorafit: max |logit diff| ${diffs.map((d) => d.toExponential(2)).join(', ')} (the adapter moves lorafit's logits by up to ${moved.map((d) => d.toFixed(2)).join(', ')})`);
    for (const d of diffs) expect(d).toBeLessThan(4e-4);
    for (const m of moved) expect(m).toBeGreaterThan(1);
  });
});

describe('lorafit merge --model x.gguf: an HF folder transformers loads', () => {
  it('config.json is the config transformers builds from the GGUF; embeddings stay tied', () => {
    expect(cliMerge).toMatch(/merged 210 modules of .* into .*SmolLM2-135M-Instruct\.Q4_1\.gguf; wrote .*merged \(float32\)/);
    const saved = JSON.parse(readFileSync(join(mergedDir, 'config.json'), 'utf8'));
    expect(saved).toMatchObject({ model_type: 'llama', architectures: ['LlamaForCausalLM'], torch_dtype: 'float32', tie_word_embeddings: true });
    for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'rms_norm_eps', 'max_position_embeddings', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'tie_word_embeddings', 'rope_parameters']) {
      expect(ref.merged_config[k], k).toEqual(ref.gguf_config[k]);
    }
    expect(ref.merged_tied).toBe(true);
  });

  it("transformers' logits on the merged folder equal lorafit's merged forward within 2.5e-4 (twice the float32 floor of merging)", () => {
    const diffs = prompts.map((_, i) => maxAbsDiff(lorafitMerged[i], golden.floats(`merged.logits.${i}`)));
    const vsAdapter = prompts.map((_, i) => maxAbsDiff(lorafitMerged[i], lorafitAdapter[i]));
    console.log(`transformers on the merged folder vs lorafit's merged forward: max |logit diff| ${diffs.map((d) => d.toExponential(2)).join(', ')}; lorafit merged vs unmerged ${vsAdapter.map((d) => d.toExponential(2)).join(', ')}`);
    // The float32 floor of a merge: W + s·BA rounded once per weight moves this 30-layer model's
    // logits by ~1.1e-4 against the unmerged forward (measured 2026-12-02: 1.07e-4, 1.06e-4),
    // so the merged comparisons allow about twice that floor; an
    // adapter merged wrongly moves the logits by its own size (up to ~18 here, see above).
    for (const d of diffs) expect(d).toBeLessThan(2.5e-4);
    for (const d of vsAdapter) expect(d).toBeLessThan(2.5e-4);
  });

  it("AutoTokenizer on the merged folder gives the ids of transformers' GGUF tokenizer; lorafit's Tokenizer and Model load it back", async () => {
    expect(ref.text_ids.merged).toEqual(ref.text_ids.gguf);
    expect(ref.chat_ids.merged).toEqual(ref.chat_ids.gguf);
    expect(ref.special.merged).toEqual(ref.special.gguf);
    const back = await Tokenizer.load(mergedDir);
    for (let i = 0; i < ref.texts.length; i++) expect(await back.encode(ref.texts[i], { addSpecialTokens: true })).toEqual(ref.text_ids.gguf[i]);
    expect(await back.encodeChat(ref.chat)).toEqual(ref.chat_ids.gguf);
    expect(back.chatTemplate).toBe(tokenizer.chatTemplate);
    await using m = await Model.load(mergedDir);
    expect(maxAbsDiff((await m.forward([prompts[0]])).logits, lorafitMerged[0])).toBeLessThan(1e-5);
  });
});
