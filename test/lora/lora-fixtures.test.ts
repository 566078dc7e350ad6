// LoRA against transformers + PEFT (test/fixtures/hf/<arch>/adapter and golden.safetensors).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { Golden, HF, maxAbs, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`${arch} + PEFT adapter`, () => {
    const golden = new Golden(arch);
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    const maskFlat = golden.ints('attention_mask');
    const mask = rows(maskFlat, [2, 16]);
    const labels = rows(golden.ints('labels'), [2, 16]);
    let model: Model;
    let adapter: LoraAdapter;

    beforeAll(async () => {
      model = await Model.load(join(HF, arch, 'model'));
      adapter = await LoraAdapter.load(model, join(HF, arch, 'adapter'));
    });
    afterAll(async () => model.dispose());

    it('logits match PeftModel within 1e-4', async () => {
      const out = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(out.logits, golden.floats('lora.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    });

    it('loss within 1e-5 and every LoRA gradient within 1e-5 (+1e-4 of its max-abs)', async () => {
      const r = await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }]);
      expect(r.tokens).toBe(16);
      expect(Math.abs(r.loss - golden.floats('lora.loss')[0])).toBeLessThan(1e-5);
      const grads = await adapter.tensors({ grads: true });
      const keys = golden.keys('grad.');
      expect(grads.size).toBe(keys.length);
      let sq = 0;
      for (const key of keys) {
        const want = golden.floats(key);
        const got = grads.get(key.slice('grad.'.length))!;
        expect(got, key).toBeDefined();
        expect(maxAbsDiff(got.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
        for (const v of got.data) sq += v * v;
      }
      expect(r.gradNorm).toBeCloseTo(Math.sqrt(sq), 5);
    });

    it('the base model comes back when adapters are disabled', async () => {
      await LoraAdapter.disableAll(model);
      const out = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), maskFlat, 256)).toBeLessThan(1e-4);
      await adapter.activate();
    });

    it('merge gives the merged logits, unmerge restores the adapter', async () => {
      await adapter.merge();
      const merged = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(merged.logits, golden.floats('merged.logits'), maskFlat, 256)).toBeLessThan(1e-4);
      const q = await model.parameter('model.layers.0.self_attn.q_proj.weight');
      expect(maxAbsDiff(q.data, golden.floats('merged.model.layers.0.self_attn.q_proj.weight'))).toBeLessThan(1e-6);
      await adapter.unmerge();
      const back = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(back.logits, golden.floats('lora.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    });

    it('save then load gives bit-identical tensors and config', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lorafit-adapter-'));
      try {
        await adapter.save(join(dir, 'a'));
        const source = readSafetensors(join(HF, arch, 'adapter', 'adapter_model.safetensors'));
        const saved = readSafetensors(join(dir, 'a', 'adapter_model.safetensors'));
        expect(saved.metadata).toEqual({ format: 'pt' });
        expect([...saved.tensors.keys()].sort()).toEqual([...source.tensors.keys()].sort());
        for (const [k, t] of source.tensors) {
          expect(saved.tensors.get(k)!.shape).toEqual(t.shape);
          expect(Buffer.from(saved.tensors.get(k)!.bytes).equals(Buffer.from(t.bytes)), k).toBe(true);
        }
        const again = await LoraAdapter.load(model, join(dir, 'a'), { name: 'again' });
        expect(again.config).toEqual(JSON.parse(readFileSync(join(dir, 'a', 'adapter_config.json'), 'utf8')));
        const ta = await adapter.tensors();
        const tb = await again.tensors();
        for (const [k, v] of ta) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer))).toBe(true);
        await again.delete();
        await adapter.activate();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('gradient accumulation', () => {
  it('4 sequences of different lengths as one batch or as 4 micro-batches give the same gradients within 1e-6', async () => {
    await using model = await Model.load(join(HF, 'qwen2', 'model'));
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules: 'all-linear', init: 'gaussian', seed: 7 });
    // B must not be zero or lora_A gets no gradient: set it from the fixture adapter's B values.
    const fixture = readSafetensors(join(HF, 'qwen2', 'adapter', 'adapter_model.safetensors'));
    const values = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of fixture.tensors) if (k.includes('lora_B')) values.set(k, { shape: t.shape, data: toFloat32(t) });
    await adapter.setTensors(values);
    const lengths = [16, 11, 7, 13];
    const seqs = lengths.map((n, i) => Array.from({ length: n }, (_, j) => 3 + ((i * 37 + j * 11) % 250)));
    const labelsOf = (s: number[]) => s.map((t, j) => (j < 2 ? -100 : t));
    const T = 16;
    const pad = (s: number[], v: number) => [...s, ...Array(T - s.length).fill(v)];
    const whole = await model.lossAndGrad([{
      inputIds: seqs.map((s) => pad(s, 0)),
      labels: seqs.map((s) => pad(labelsOf(s), -100)),
      attentionMask: seqs.map((s) => pad(s.map(() => 1), 0)),
    }]);
    const gradsWhole = await adapter.tensors({ grads: true });
    const micro = await model.lossAndGrad(seqs.map((s) => ({ inputIds: [s], labels: [labelsOf(s)] })));
    const gradsMicro = await adapter.tensors({ grads: true });
    expect(micro.tokens).toBe(whole.tokens);
    expect(Math.abs(micro.loss - whole.loss)).toBeLessThan(1e-6);
    let worst = 0;
    for (const [k, v] of gradsWhole) worst = Math.max(worst, maxAbsDiff(v.data, gradsMicro.get(k)!.data));
    expect(maxAbs([...gradsWhole.values()].flatMap((v) => [...v.data]))).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThan(1e-6);
  });
});
