// Gradient checkpointing changes memory, not maths; full-parameter training trains every weight.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { byteExamples, yodaLines } from '../helpers/byte-data.js';
import { HF, maxAbsDiff } from '../helpers/golden.js';
import { collate } from '../../lib/train/batches.js';

const lines = yodaLines();
const root = mkdtempSync(join(tmpdir(), 'lorafit-full-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('gradient checkpointing', () => {
  it('gives the same loss and LoRA gradients (dropout masks replayed) within 1e-6', async () => {
    await using model = await Model.load(join(HF, 'qwen2', 'model'));
    const adapter = await LoraAdapter.load(model, join(HF, 'qwen2', 'adapter'));
    // dropout on: the recomputation must draw the same masks
    const tuned = await LoraAdapter.create(model, { name: 'drop', rank: 4, alpha: 8, targetModules: 'all-linear', dropout: 0.2, seed: 3 });
    await tuned.setTensors(await adapter.tensors());
    const batch = collate(byteExamples(lines.slice(0, 4)));
    const plain = await model.lossAndGrad([batch], { dropoutSeed: 11 });
    const gradsPlain = await tuned.tensors({ grads: true });
    const ckpt = await model.lossAndGrad([batch], { dropoutSeed: 11, gradientCheckpointing: true });
    const gradsCkpt = await tuned.tensors({ grads: true });
    expect(Math.abs(ckpt.loss - plain.loss)).toBeLessThan(1e-6);
    for (const [k, v] of gradsPlain) expect(maxAbsDiff(v.data, gradsCkpt.get(k)!.data), k).toBeLessThan(1e-6);
    const other = await model.lossAndGrad([batch], { dropoutSeed: 12 });
    expect(other.loss).not.toBe(plain.loss);  // dropout is really on
  });
});

describe('full-parameter training', () => {
  it('trains every weight, lowers eval loss and resumes exactly', async () => {
    const train = byteExamples(lines.slice(0, 32));
    const evalData = byteExamples(lines.slice(32));
    const out = join(root, 'full');
    const make = async () => {
      const model = await Model.load(join(HF, 'llama', 'model'));
      const trainer = new Trainer({ model, fullParameter: true, trainData: train, evalData, learningRate: 1e-3, maxSteps: 6, batchSize: 4, saveSteps: 3, outputDir: out, gradientCheckpointing: true });
      return { model, trainer };
    };
    const a = await make();
    const before = await a.trainer.evaluateLoss();
    const q0 = await a.model.parameter('model.embed_tokens.weight');
    const ra = await a.trainer.fit();
    expect(before.evalLoss - ra.evalLoss!).toBeGreaterThan(0.3);
    const q1 = await a.model.parameter('model.embed_tokens.weight');
    expect(maxAbsDiff(q0.data, q1.data)).toBeGreaterThan(1e-4);  // the base weights moved
    const b = await make();
    const rb = await b.trainer.fit({ resumeFrom: join(out, 'checkpoint-3') });
    const la = ra.history.filter((h) => h.type === 'step').map((h) => h.loss as number);
    const lb = rb.history.filter((h) => h.type === 'step').map((h) => h.loss as number);
    for (let i = 3; i < 6; i++) expect(Math.abs(la[i] - lb[i])).toBeLessThan(1e-6);
    await Promise.all([a.model.dispose(), b.model.dispose()]);
  });
});
