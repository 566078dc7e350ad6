// LoRA+ against the real PEFT: the learning rate of every adapter tensor equals
// create_loraplus_optimizer's (lora_B and DoRA's 1-D magnitudes at lr x ratio, lora_A at lr), and
// one Trainer step equals one step of PEFT's LoRA+ AdamW on the same sequence.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { loraPlusLearningRates } from '../../lib/lora/loraplus.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { Golden, HF, maxAbs, maxAbsDiff } from '../helpers/golden.js';
import { randomLoraB } from '../helpers/lora.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('loraplus');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const LR = 1e-3;
const RATIO = 16;

describe.each([false, true])('LoRA+ (ratio 16), DoRA %s', (useDora) => {
  it('learning rates per tensor and one AdamW step equal PEFT create_loraplus_optimizer', async () => {
    const golden = new Golden('llama');
    const [B, T] = [2, 16];
    const ids = golden.ints('input_ids');
    const mask = golden.ints('attention_mask');
    const labels = golden.ints('labels');
    // row 0 without its padding: one sequence, so both stacks see exactly the same batch
    const keep = [...Array(T).keys()].filter((t) => mask[t] === 1);
    const seqIds = keep.map((t) => ids[t]);
    const seqLabels = keep.map((t) => labels[t]);
    expect(B).toBe(2);

    await using model = await Model.load(join(HF, 'llama', 'model'));
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, useDora, targetModules: 'all-linear', seed: 3 });
    await randomLoraB(adapter, 11);  // so that lora_A gets a gradient too
    const dir = join(root, `adapter-${useDora}`);
    await adapter.save(dir);
    const out = join(root, `peft-${useDora}.safetensors`);
    await runPython('loraplus_check.py', ['--model', join(HF, 'llama', 'model'), '--adapter', dir, '--ids', seqIds.join(','), `--labels=${seqLabels.join(',')}`, '--lr', String(LR), '--ratio', String(RATIO), '--out', out]);
    const report = JSON.parse(readFileSync(out.replace(/\.safetensors$/, '.json'), 'utf8')) as { lr: Record<string, number>; loss: number };

    const before = await adapter.tensors();
    const mine = loraPlusLearningRates(before, LR, RATIO);
    expect(Object.fromEntries([...mine].sort())).toEqual(Object.fromEntries(Object.entries(report.lr).sort()));
    if (useDora) expect([...mine].filter(([k]) => k.endsWith('lora_magnitude_vector')).every(([, lr]) => lr === LR * RATIO)).toBe(true);

    // the gradients of the step, to know where Adam's first step is ill-conditioned (below)
    await model.lossAndGrad([{ inputIds: [seqIds], labels: [seqLabels] }]);
    const grads = await adapter.tensors({ grads: true });
    const trainer = new Trainer({
      model, adapter, trainData: [{ inputIds: seqIds, labels: seqLabels }], maxSteps: 1, batchSize: 1, learningRate: LR,
      lrScheduler: 'constant', maxGradNorm: 0, weightDecay: 0, loraplusLrRatio: RATIO, shuffle: false,
    });
    const fit = await trainer.fit();
    expect(Math.abs(fit.trainLoss - report.loss)).toBeLessThan(1e-5);
    const after = await adapter.tensors();
    const peft = readSafetensors(out);
    for (const [key, v] of after) {
      const want = toFloat32(peft.tensors.get(key)!);
      const moved = maxAbsDiff(v.data, before.get(key)!.data);
      expect(moved, `${key} moved`).toBeGreaterThan(0.5 * mine.get(key)!);  // Adam's first step: ~lr per element
      // Adam's first step is lr * g / (|g| + eps): where |g| is within 100 eps (1e-6) of zero,
      // fp32 rounding noise in g (~1e-9 here) moves that element by a sizeable part of lr, so
      // those elements are held to lr x ratio (the step's size) instead
      const g = grads.get(key)!.data;
      let worst = 0;
      for (let i = 0; i < want.length; i++) if (Math.abs(g[i]) > 1e-6) worst = Math.max(worst, Math.abs(v.data[i] - want[i]));
      expect(worst, key).toBeLessThan(1e-6 + 1e-4 * maxAbs(want));
      expect(maxAbsDiff(v.data, want), key).toBeLessThan(LR * RATIO);
    }
  });
});
