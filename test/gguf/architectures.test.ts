// Every architecture from GGUF: tiny random HF models (test/interop/tiny_configs.py) written as
// GGUF by gguf-py the way llama.cpp's convert_hf_to_gguf.py writes them (test/gguf/arch_ref.py:
// llama.cpp names, keys, q/k permutation, Gemma norms + 1, Llama 3 rope_freqs; F32, and Q8_0/Q4_0/
// Q4_1/Q5_0/Q5_1 variants), loaded by lorafit and compared with transformers loading the same file
// (from_pretrained(dir, gguf_file=...)) where transformers reads it faithfully, else with the
// original HF model. The reference and why it was chosen are printed per case.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toGgufName, type GgufArch } from '../../lib/gguf/tensor-names.js';
import { Model } from '../../lib/model/model.js';
import { Golden, maxAbsDiff, rows } from '../helpers/golden.js';
import { python, scratchDir } from '../helpers/python.js';

const run = promisify(execFile);
const out = scratchDir('gguf-arch');
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface CaseInfo {
  ref: 'transformers-gguf' | 'original';
  why: string;
  transformers_gguf: string;
  transformers_gguf_vs_original?: number;
  gguf_names: Record<string, string>;
  gen_min_margin: number;
}
// case -> [GGUF architecture, lorafit model type, the reference transformers gives]
const CASES: [string, GgufArch, string, CaseInfo['ref']][] = [
  ['llama', 'llama', 'llama', 'transformers-gguf'],
  ['llama-quant', 'llama', 'llama', 'transformers-gguf'],
  ['llama3', 'llama', 'llama', 'original'],
  ['mistral', 'llama', 'mistral', 'original'],
  ['qwen2', 'qwen2', 'qwen2', 'transformers-gguf'],
  ['qwen2-q8', 'qwen2', 'qwen2', 'transformers-gguf'],
  ['gemma', 'gemma', 'gemma', 'original'],
  ['gemma2', 'gemma2', 'gemma2', 'original'],
];
let info: Record<string, CaseInfo>;
let ref: Golden;

beforeAll(async () => {
  await run(python(), [fileURLToPath(new URL('./arch_ref.py', import.meta.url)), out], {
    env: { ...process.env, OMP_NUM_THREADS: '1', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 64 << 20,
  });
  info = JSON.parse(readFileSync(join(out, 'reference.json'), 'utf8')) as Record<string, CaseInfo>;
  ref = new Golden('gguf-arch', join(out, 'reference.safetensors'));
}, 300_000);

describe.each(CASES)('%s GGUF', (name, arch, modelType, expectedRef) => {
  it('tensor names are the ones gguf-py gives', () => {
    for (const [hf, g] of Object.entries(info[name].gguf_names)) expect(toGgufName(hf, arch), hf).toBe(g);
  });

  it('logits within 1e-4 of the reference, greedy generate() equal', async () => {
    const c = info[name];
    console.log(`${name}: reference ${c.ref} (${c.why}); transformers from GGUF: ${c.transformers_gguf}` +
      (c.transformers_gguf_vs_original !== undefined ? `, max |logit diff| vs the original model ${c.transformers_gguf_vs_original.toExponential(2)}` : ''));
    expect(c.ref).toBe(expectedRef);
    await using model = await Model.load(join(out, `${name}.gguf`));
    expect(model.config.modelType).toBe(modelType);
    const ids = rows(ref.ints(`${name}.input_ids`), [2, 16]);
    const r = await model.forward(ids);
    const diff = maxAbsDiff(r.logits, ref.floats(`${name}.logits`));
    console.log(`${name}: lorafit vs reference max |logit diff| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    const [tokens] = await model.generate(ref.ints(`${name}.gen.prompt`), { maxNewTokens: 8, eosTokenId: [] });
    expect(tokens, `smallest top-1/top-2 margin ${c.gen_min_margin}`).toEqual(ref.ints(`${name}.gen.tokens`));
  });
});

it('what transformers 5.23 refuses or misreads (recorded, so a change in transformers shows up here)', () => {
  expect(info.gemma.transformers_gguf).toContain('GGUF model with architecture gemma is not supported yet');
  expect(info.mistral.transformers_gguf).toContain('Unknown gguf model_type: mistral');
  expect(info.llama3.transformers_gguf_vs_original).toBeGreaterThan(1e-2);
  expect(info.gemma2.transformers_gguf_vs_original).toBeGreaterThan(1e-2);
  expect(info.llama.transformers_gguf_vs_original).toBe(0);
  expect(info.qwen2.transformers_gguf_vs_original).toBe(0);
});
