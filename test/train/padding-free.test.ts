// Padding-free and packed batches against the padded reference (fp32, the HF fixtures): the same
// loss and the same LoRA gradients within 1e-5, also under gradient accumulation and gradient
// checkpointing, and against transformers itself (its padded golden numbers, and its packed path:
// restarting position_ids without an attention mask, test/interop/packed_check.py).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model, type MicroBatch } from '../../lib/model/model.js';
import { serializeSafetensors, readSafetensors, toFloat32, type StFile } from '../../lib/util/safetensors.js';
import { Trainer } from '../../lib/train/trainer.js';
import { collate, collatePaddingFree, type Example } from '../../lib/train/batches.js';
import { Golden, HF, maxAbsDiff } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const TOL = 1e-5;
// Measured differences, printed at the end (the report quotes them).
const measured: Record<string, number> = {};
const note = (key: string, v: number) => {
  measured[key] = Math.max(measured[key] ?? 0, v);
  return v;
};

function example(ids: ArrayLike<number>, labels: ArrayLike<number>): Example {
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

function pack(parts: Example[]): Example {
  const ids = parts.flatMap((p) => [...p.inputIds]);
  const labels = parts.flatMap((p) => [...p.labels]);
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), segmentLengths: Int32Array.from(parts.map((p) => p.inputIds.length)) };
}

type Grads = Map<string, { shape: number[]; data: Float32Array }>;

async function lossAndGrads(model: Model, adapter: LoraAdapter, batches: MicroBatch[], opts: { gradientCheckpointing?: boolean } = {}) {
  const r = await model.lossAndGrad(batches, opts);
  return { ...r, grads: await adapter.tensors({ grads: true }) };
}

function gradDiff(a: Grads, b: Grads): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [k, t] of a) worst = Math.max(worst, maxAbsDiff(t.data, b.get(k)!.data));
  return worst;
}

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`${arch}: padding-free and packed batches equal padded ones`, () => {
    const golden = new Golden(arch);
    const ids = golden.ints('input_ids');
    const labels = golden.ints('labels');
    // The two golden rows (row 1 has 12 real tokens), and two more examples trained on every token,
    // so that the first label of an example matters (padding-free rows must not count it).
    const A = example(ids.slice(0, 16), labels.slice(0, 16));
    const B = example(ids.slice(16, 28), labels.slice(16, 28));
    const C = example(ids.slice(3, 8), ids.slice(3, 8));
    const D = example(ids.slice(20, 29), ids.slice(20, 29));
    const all = [A, B, C, D];
    let model: Model;
    let adapter: LoraAdapter;
    let ref: Awaited<ReturnType<typeof lossAndGrads>>;

    beforeAll(async () => {
      model = await Model.load(join(HF, arch, 'model'));
      adapter = await LoraAdapter.load(model, join(HF, arch, 'adapter'));
      ref = await lossAndGrads(model, adapter, [collate(all)]);
    });
    afterAll(async () => model?.dispose());

    it('the padding-free batch of the golden rows gives transformers\' padded loss and gradients', async () => {
      const r = await lossAndGrads(model, adapter, [collatePaddingFree([A, B])]);
      expect(r.tokens).toBe(16);
      expect(note('vs HF golden: loss', Math.abs(r.loss - golden.floats('lora.loss')[0]))).toBeLessThan(TOL);
      let worst = 0;
      for (const key of golden.keys('grad.')) worst = Math.max(worst, maxAbsDiff(r.grads.get(key.slice(5))!.data, golden.floats(key)));
      expect(note('vs HF golden: grad', worst)).toBeLessThan(TOL);
    });

    it('padding-free: one row, same loss, tokens and gradients as the padded batch', async () => {
      const mb = collatePaddingFree(all);
      expect(mb.inputIds).toMatchObject({ shape: [1, 42] });
      expect(mb.attentionMask).toBeUndefined();
      expect([...mb.segmentLengths!]).toEqual([16, 12, 5, 9]);
      const r = await lossAndGrads(model, adapter, [mb]);
      expect(r.tokens).toBe(ref.tokens);
      expect(note('padding-free vs padded: loss', Math.abs(r.loss - ref.loss))).toBeLessThan(TOL);
      expect(note('padding-free vs padded: grad', gradDiff(r.grads, ref.grads))).toBeLessThan(TOL);
      expect(Math.abs(r.gradNorm - ref.gradNorm)).toBeLessThan(TOL);
    });

    it('without isolation the numbers differ (the test can fail)', async () => {
      const mb = collatePaddingFree(all);
      const r = await lossAndGrads(model, adapter, [{ inputIds: mb.inputIds, labels: mb.labels }]);
      expect(Math.abs(r.loss - ref.loss)).toBeGreaterThan(1e-3);
    });

    it('a segment past the eager-attention limit (256 tokens: SDPA) beside a short one equals the padded batch', async () => {
      const longIds = Array.from({ length: 300 }, (_, i) => ids[(i * 7) % ids.length]);
      const E = example(longIds, longIds);
      const padded = await lossAndGrads(model, adapter, [collate([E, A])]);
      const r = await lossAndGrads(model, adapter, [collatePaddingFree([E, A])]);
      expect(r.tokens).toBe(padded.tokens);
      expect(note('long segment (SDPA) vs padded: loss', Math.abs(r.loss - padded.loss))).toBeLessThan(TOL);
      expect(note('long segment (SDPA) vs padded: grad', gradDiff(r.grads, padded.grads))).toBeLessThan(TOL);
    });

    it('packed blocks (padded rows with a pad tail, or one padding-free row) equal the padded batch', async () => {
      // Row 0 holds three documents, row 1 one (padded by 18: the tail is a segment of its own).
      const blocks = [pack([A, C, D]), pack([B])];
      const padded = collate(blocks);
      expect([...padded.segmentLengths!]).toEqual([16, 5, 9, 12, 18]);
      const r = await lossAndGrads(model, adapter, [padded]);
      expect(r.tokens).toBe(ref.tokens);
      expect(note('packed (padded rows) vs padded: loss', Math.abs(r.loss - ref.loss))).toBeLessThan(TOL);
      expect(note('packed (padded rows) vs padded: grad', gradDiff(r.grads, ref.grads))).toBeLessThan(TOL);
      const flat = await lossAndGrads(model, adapter, [collatePaddingFree(blocks)]);
      expect(note('packed (padding-free) vs padded: loss', Math.abs(flat.loss - ref.loss))).toBeLessThan(TOL);
      expect(note('packed (padding-free) vs padded: grad', gradDiff(flat.grads, ref.grads))).toBeLessThan(TOL);
    });

    it('gradient accumulation: two padding-free micro-batches equal two padded ones and one padded batch', async () => {
      const acc = await lossAndGrads(model, adapter, [collate([A, C]), collate([B, D])]);
      const free = await lossAndGrads(model, adapter, [collatePaddingFree([A, C]), collatePaddingFree([B, D])]);
      const packed = await lossAndGrads(model, adapter, [collatePaddingFree([pack([A, C])]), collate([pack([B]), pack([D])])]);
      for (const [name, r] of [['padded accumulation', acc], ['padding-free accumulation', free], ['packed accumulation', packed]] as const) {
        expect(r.tokens).toBe(ref.tokens);
        expect(note(`${name} vs padded: loss`, Math.abs(r.loss - ref.loss)), name).toBeLessThan(TOL);
        expect(note(`${name} vs padded: grad`, gradDiff(r.grads, ref.grads)), name).toBeLessThan(TOL);
      }
    });

    it('gradient checkpointing on a padding-free batch gives the same gradients', async () => {
      const r = await lossAndGrads(model, adapter, [collatePaddingFree(all)], { gradientCheckpointing: true });
      expect(note('padding-free + checkpointing vs padded: grad', gradDiff(r.grads, ref.grads))).toBeLessThan(TOL);
    });

    it('evalLoss and forward logits of a padding-free row equal the padded ones', async () => {
      const a = await model.evalLoss([collate(all)]);
      const b = await model.evalLoss([collatePaddingFree(all)]);
      expect(b.tokens).toBe(a.tokens);
      expect(Math.abs(b.sum / b.tokens - a.sum / a.tokens)).toBeLessThan(TOL);
      const padded = collate(all);
      const pl = await model.forward(padded.inputIds as { data: Int32Array; shape: [number, number] }, { attentionMask: padded.attentionMask });
      const mb = collatePaddingFree(all);
      const fl = await model.forward(mb.inputIds as { data: Int32Array; shape: [number, number] }, { segmentLengths: mb.segmentLengths });
      const V = 256, T = 16;
      let worst = 0;
      let at = 0;
      all.forEach((e, row) => {
        for (let t = 0; t < e.inputIds.length; t++, at++)
          for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(fl.logits[at * V + v] - pl.logits[(row * T + t) * V + v]));
      });
      expect(note('forward logits padding-free vs padded', worst)).toBeLessThan(1e-4);
    });

    it('refuses segments that do not cover the rows', async () => {
      const mb = collatePaddingFree(all);
      await expect(model.lossAndGrad([{ ...mb, segmentLengths: [16, 12, 5] }])).rejects.toMatchObject({ code: 'E_SHAPE' });
      const padded = collate([A, B]);
      await expect(model.lossAndGrad([{ ...padded, segmentLengths: [20, 12] }])).rejects.toMatchObject({ code: 'E_SHAPE' });
      await expect(model.lossAndGrad([{ ...mb, segmentLengths: [16, 0, 12, 14] }])).rejects.toMatchObject({ code: 'E_SHAPE' });
    });

    describe('against transformers\' packed path (restarting position_ids, no mask)', () => {
      let hf: StFile;
      const mb = collatePaddingFree(all);
      beforeAll(async () => {
        const dir = scratchDir('packed');
        const data = (mb.inputIds as { data: Int32Array }).data;
        const pos: number[] = [];
        for (const len of mb.segmentLengths!) for (let i = 0; i < len; i++) pos.push(i);
        const big = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a, (v) => BigInt(v)));
        const tensor = (a: ArrayLike<number>) => ({ dtype: 'I64' as const, shape: [1, a.length], bytes: new Uint8Array(big(a).buffer) });
        writeFileSync(join(dir, 'in.safetensors'), serializeSafetensors({
          input_ids: tensor(data),
          position_ids: tensor(pos),
          labels: tensor((mb.labels as { data: Int32Array }).data),
        }));
        await runPython('packed_check.py', ['--model', join(HF, arch, 'model'), '--adapter', join(HF, arch, 'adapter'), '--inputs', join(dir, 'in.safetensors'), '--out', join(dir, 'out.safetensors')]);
        hf = readSafetensors(join(dir, 'out.safetensors'));
      }, 300_000);

      it('loss and every LoRA gradient within 1e-5, logits within 1e-4', async () => {
        const r = await lossAndGrads(model, adapter, [mb]);
        expect(note('vs HF packed: loss', Math.abs(r.loss - toFloat32(hf.tensors.get('loss')!)[0]))).toBeLessThan(TOL);
        let worst = 0;
        for (const [k, t] of r.grads) worst = Math.max(worst, maxAbsDiff(t.data, toFloat32(hf.tensors.get(`grad.${k}`)!)));
        expect(note('vs HF packed: grad', worst)).toBeLessThan(TOL);
        // transformers' packed loss is the padded one too
        expect(note('HF packed vs lorafit padded: loss', Math.abs(toFloat32(hf.tensors.get('loss')!)[0] - ref.loss))).toBeLessThan(TOL);
        const out = await model.forward(mb.inputIds as { data: Int32Array; shape: [number, number] }, { segmentLengths: mb.segmentLengths });
        expect(note('vs HF packed: logits', maxAbsDiff(out.logits, toFloat32(hf.tensors.get('logits')!)))).toBeLessThan(1e-4);
      });
    });

    it('Trainer: paddingFree (default) and paddingFree: false take the same steps', async () => {
      const losses: number[][] = [];
      const weights: Grads[] = [];
      for (const paddingFree of [true, false]) {
        const a = await LoraAdapter.create(model, { rank: 4, alpha: 8, seed: 7, name: `pf-${paddingFree}` });
        const trainer = new Trainer({ model, adapter: a, trainData: all, evalData: [C, D], batchSize: 2, gradientAccumulationSteps: 2, maxSteps: 3, learningRate: 1e-3, paddingFree });
        const seen: number[] = [];
        trainer.on('step', (s) => seen.push(s.loss));
        const res = await trainer.fit();
        losses.push([...seen, res.evalLoss!]);
        weights.push(await a.tensors());
        await a.delete();
      }
      await adapter.activate();
      for (let i = 0; i < losses[0].length; i++) expect(note('Trainer padding-free vs padded: loss', Math.abs(losses[0][i] - losses[1][i]))).toBeLessThan(TOL);
      expect(note('Trainer padding-free vs padded: weights after 3 AdamW steps', gradDiff(weights[0], weights[1]))).toBeLessThan(1e-4);
    });
  });
}

afterAll(() => {
  console.log(`padding-free equivalence (max abs diff): ${JSON.stringify(measured, null, 1)}`);
});

// Sliding windows (Mistral: every layer; Gemma 2: alternate layers plus soft-capped, eager
// attention): the per-segment masks must equal the padded batch's. Tiny models from
// test/interop/make_reference.py; segments longer than the window of 4.
describe.each([
  { name: 'mistral', args: ['--arch', 'mistral'] },
  { name: 'gemma2', args: ['--arch', 'gemma2'] },
])('$name (sliding window 4): padding-free equals padded', ({ name, args }) => {
  it('forward logits within 1e-4, loss and LoRA gradients within 1e-5', async () => {
    const dir = scratchDir(`pf-${name}`);
    await runPython('make_reference.py', [...args, '--out', dir]);
    const ref = new Golden(name, join(dir, 'reference.safetensors'));
    const ids = ref.ints('input_ids');
    await using model = await Model.load(join(dir, 'model'));
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, seed: 3, targetModules: 'all-linear', init: 'gaussian' });
    const rowsOf = [ids.slice(0, 16), ids.slice(16, 27), ids.slice(2, 9)];
    const all = rowsOf.map((r) => example(r, r));
    const padded = collate(all);
    const free = collatePaddingFree(all);
    const V = model.config.vocabSize, T = 16;
    const pl = await model.forward(padded.inputIds as { data: Int32Array; shape: [number, number] }, { attentionMask: padded.attentionMask });
    const fl = await model.forward(free.inputIds as { data: Int32Array; shape: [number, number] }, { segmentLengths: free.segmentLengths });
    let worst = 0;
    let at = 0;
    all.forEach((e, row) => {
      for (let t = 0; t < e.inputIds.length; t++, at++)
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(fl.logits[at * V + v] - pl.logits[(row * T + t) * V + v]));
    });
    expect(note(`${name} forward logits padding-free vs padded`, worst)).toBeLessThan(1e-4);
    const a = await lossAndGrads(model, adapter, [padded]);
    const b = await lossAndGrads(model, adapter, [free]);
    expect(b.tokens).toBe(a.tokens);
    expect(note(`${name} padding-free vs padded: loss`, Math.abs(a.loss - b.loss))).toBeLessThan(TOL);
    expect(note(`${name} padding-free vs padded: grad`, gradDiff(a.grads, b.grads))).toBeLessThan(TOL);
  }, 300_000);
});
