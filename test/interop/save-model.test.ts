// A merged model written by Model.save loads in the real transformers and gives our logits.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { fromInt64, readSafetensors, toFloat32, writeSafetensors } from '../../lib/util/safetensors.js';
import { Golden, HF, maxAbsDiffMasked } from '../helpers/golden.js';
import { runPython } from '../helpers/python.js';

const root = mkdtempSync(join(tmpdir(), 'lorafit-save-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(['llama', 'qwen2'] as const)('%s merged export', (arch) => {
  it('merge_and_unload + save (sharded) loads in transformers with logits within 1e-4 of ours', async () => {
    const golden = new Golden(arch);
    const ids = golden.ints('input_ids');
    const mask = golden.ints('attention_mask');
    await using model = await Model.load(join(HF, arch, 'model'));
    const adapter = await LoraAdapter.load(model, join(HF, arch, 'adapter'));
    await adapter.mergeAndUnload();
    const out = join(root, arch);
    await model.save(out, { maxShardSize: 200_000 });
    const files = readdirSync(out);
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).sort()).toEqual(model.parameterNames().sort());
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype).toBe('float32');

    const inputs = join(root, `${arch}-inputs.safetensors`);
    await writeSafetensors(inputs, { input_ids: fromInt64(ids, [2, 16]), attention_mask: fromInt64(mask, [2, 16]) });
    await runPython('transformers_check.py', ['--model', out, '--inputs', inputs, '--out', join(root, `${arch}-hf.safetensors`)]);
    const hf = toFloat32(readSafetensors(join(root, `${arch}-hf.safetensors`)).tensors.get('logits')!);
    const ours = await model.forward([ids.slice(0, 16), ids.slice(16)], { attentionMask: [mask.slice(0, 16), mask.slice(16)] });
    expect(maxAbsDiffMasked(ours.logits, hf, mask, 256)).toBeLessThan(1e-4);
    expect(maxAbsDiffMasked(hf, golden.floats('merged.logits'), mask, 256)).toBeLessThan(1e-4);
  });
});
