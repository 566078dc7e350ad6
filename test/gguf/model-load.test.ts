// Model.load's GGUF paths beyond the numbers: how a spec is recognised as GGUF, the options that
// apply to it (dtype, QLoRA quantize), what a GGUF model says about itself, and its errors.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportGguf } from '../../lib/export/index.js';
import { Model } from '../../lib/model/model.js';
import { writeByteTokenizer } from '../export/helpers.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { scratchDir } from '../helpers/python.js';
import { rejects } from '../helpers/rejects.js';
import { writeTinyGguf } from './tiny-gguf.js';

const dir = scratchDir('gguf-load');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'tiny.gguf');
writeTinyGguf(file, { dtype: 'Q8_0', meta: { 'tokenizer.ggml.eot_token_id': 5, 'tokenizer.ggml.padding_token_id': 0 } });

describe('Model.load(GGUF)', () => {
  it('a .gguf path, or any file starting with the GGUF magic; source, dir, generation config', async () => {
    const blob = join(dir, 'sha256-0123');
    copyFileSync(file, blob);
    await using a = await Model.load(file);
    await using b = await Model.load(blob);
    expect(a.source).toEqual({ format: 'gguf', path: file, spec: file, architecture: 'llama', quantTypes: ['Q8_0', 'F32'], hfConfig: expect.objectContaining({ model_type: 'llama', hidden_size: 32 }) });
    expect(b.source.path).toBe(blob);
    expect(a.dir).toBe(file);
    // eos and llama.cpp's end-of-turn id both stop generation
    expect(a.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: [2, 5], pad_token_id: 0 });
    expect(a.eosTokenIds).toEqual([2, 5]);
    const x = await a.forward([[1, 2, 3, 4]]);
    const y = await b.forward([[1, 2, 3, 4]]);
    expect(maxAbsDiff(x.logits, y.logits)).toBe(0);
  });

  it("dtype and quantize apply: bfloat16, and QLoRA's nf4 requantizing the dequantized weights", async () => {
    await using f32 = await Model.load(file);
    await using bf16 = await Model.load(file, { dtype: 'bfloat16' });
    await using nf4 = await Model.load(file, { quantize: 'nf4' });
    expect(bf16.dtype).toBe('bfloat16');
    expect(nf4.quantization).toMatchObject({ type: 'nf4', prequantized: false });
    expect((await nf4.storageReport()).quantizedParams).toBeGreaterThan(0);
    const ref = (await f32.forward([[1, 2, 3]])).logits;
    // same model, coarser storage: close, not equal
    expect(maxAbsDiff((await bf16.forward([[1, 2, 3]])).logits, ref)).toBeLessThan(0.1);
    expect(maxAbsDiff((await nf4.forward([[1, 2, 3]])).logits, ref)).toBeLessThan(0.5);
  });

  it('errors: a missing .gguf, a .gguf that is not GGUF, a non-model GGUF', async () => {
    await rejects(Model.load(join(dir, 'missing.gguf')), 'E_GGUF', 'cannot open');
    mkdirSync(join(dir, 'folder.gguf'));
    await rejects(Model.load(join(dir, 'folder.gguf')), 'E_GGUF', 'not a file');
    const junk = join(dir, 'junk.gguf');
    writeFileSync(junk, 'not a gguf file at all');
    await rejects(Model.load(junk), 'E_GGUF', 'not a GGUF file');
    const adapter = join(dir, 'adapter.gguf');
    writeTinyGguf(adapter, { meta: { 'general.type': 'adapter', 'general.architecture': 'llama', 'adapter.type': 'lora' }, omit: ['token_embd.weight'] });
    await rejects(Model.load(adapter), 'E_GGUF', "general.type is 'adapter'", 'needs the base model GGUF');
  });

  it('save() writes an HF folder from the metadata that loads back with the same logits (test/gguf/smollm2-save.test.ts checks it in transformers)', async () => {
    await using m = await Model.load(file);
    const out = join(dir, 'saved');
    await m.save(out);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 32, torch_dtype: 'float32' });
    expect(config._model_name_or_path).toBeUndefined();
    expect(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'))).toEqual({ bos_token_id: 1, eos_token_id: [2, 5], pad_token_id: 0 });
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    await using back = await Model.load(out);
    expect(maxAbsDiff((await back.forward([[1, 2, 3, 4]])).logits, (await m.forward([[1, 2, 3, 4]])).logits)).toBe(0);
  });
});

describe("lorafit's own GGUF export loads back", () => {
  it.each(['llama', 'qwen2'])('%s fixture -> exportGguf (F32) -> Model.load: the HF golden logits within 1e-4', async (arch) => {
    const out = join(dir, `${arch}-export.gguf`);
    await exportGguf(join(HF, arch, 'model'), out, { dtype: 'F32', tokenizerDir: writeByteTokenizer(join(dir, `tok-${arch}`)) });
    const g = new Golden(arch);
    const mask = g.ints('attention_mask');
    await using m = await Model.load(out);
    const r = await m.forward(rows(g.ints('input_ids'), [2, 16]), { attentionMask: rows(mask, [2, 16]) });
    expect(maxAbsDiffMasked(r.logits, g.floats('base.logits'), mask, 256)).toBeLessThan(1e-4);
  });
});
