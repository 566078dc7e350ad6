// AdamW against the real torch: three Trainer steps with clipping and weight decay equal three
// steps of torch.optim.AdamW after clip_grad_norm_ on a PEFT adapter, through the one-loop CPU
// kernel (native/adamw_kernel.cc) and through aten's fused kernel (LORAFIT_ADAMW_KERNEL=0).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { Golden, HF, maxAbs, maxAbsDiff } from '../helpers/golden.js';
import { randomLoraB } from '../helpers/lora.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('adamw');
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => { delete process.env.LORAFIT_ADAMW_KERNEL; });
// weight decay 1: a decay of lr x wd x |p| (1e-4 per step on these tensors) stands well above the bound below
const [LR, WD, MAX_NORM, STEPS] = [1e-3, 1, 0.05, 3];

describe.each(['kernel', 'aten'])('AdamW (%s) with clipping and weight decay', (path) => {
  it(`${STEPS} steps equal torch.optim.AdamW after clip_grad_norm_`, async () => {
    if (path === 'aten') process.env.LORAFIT_ADAMW_KERNEL = '0';
    const golden = new Golden('llama');
    const T = 16;
    const ids = golden.ints('input_ids');
    const mask = golden.ints('attention_mask');
    const labels = golden.ints('labels');
    const keep = [...Array(T).keys()].filter((t) => mask[t] === 1);  // row 0 without its padding
    const seqIds = keep.map((t) => ids[t]);
    const seqLabels = keep.map((t) => labels[t]);

    await using model = await Model.load(join(HF, 'llama', 'model'));
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules: 'all-linear', seed: 5 });
    await randomLoraB(adapter, 17);  // so that lora_A gets a gradient too
    const dir = join(root, `adapter-${path}`);
    await adapter.save(dir);
    const out = join(root, `torch-${path}.safetensors`);
    await runPython('adamw_check.py', ['--model', join(HF, 'llama', 'model'), '--adapter', dir, '--ids', seqIds.join(','), `--labels=${seqLabels.join(',')}`,
      '--lr', String(LR), '--weight-decay', String(WD), '--max-grad-norm', String(MAX_NORM), '--steps', String(STEPS), '--out', out]);
    const report = JSON.parse(readFileSync(out.replace(/\.safetensors$/, '.json'), 'utf8')) as { losses: number[]; grad_norms: number[] };

    const before = await adapter.tensors();
    const trainer = new Trainer({
      model, adapter, trainData: [{ inputIds: seqIds, labels: seqLabels }], maxSteps: STEPS, batchSize: 1, learningRate: LR,
      lrScheduler: 'constant', warmupSteps: 0, maxGradNorm: MAX_NORM, weightDecay: WD, shuffle: false, loggingSteps: 1,
    });
    const steps: { loss: number; gradNorm: number; clipped: boolean }[] = [];
    trainer.on('step', (s) => steps.push(s));
    await trainer.fit();
    expect(steps.length).toBe(STEPS);
    for (let i = 0; i < STEPS; i++) {
      expect(Math.abs(steps[i].loss - report.losses[i]), `loss at step ${i + 1}`).toBeLessThan(1e-5);
      expect(Math.abs(steps[i].gradNorm - report.grad_norms[i]) / report.grad_norms[i], `grad norm at step ${i + 1}`).toBeLessThan(1e-4);
      expect(steps[i].clipped).toBe(report.grad_norms[i] > MAX_NORM);
    }
    expect(steps.some((s) => s.clipped)).toBe(true);  // the test exercises clipping

    const after = await adapter.tensors();
    const want = readSafetensors(out);
    for (const [key, v] of after) {
      const w = toFloat32(want.tensors.get(key)!);
      expect(maxAbsDiff(v.data, before.get(key)!.data), `${key} moved`).toBeGreaterThan(0.5 * LR);
      // Adam's steps are ~lr per element whatever the gradient's size: rounding noise in a
      // near-zero gradient moves its element by a part of lr, so the bound is a small part of
      // the 3 lr the elements travel, where a missed clip or decay would move them by ~lr
      expect(maxAbsDiff(v.data, w), key).toBeLessThan(0.05 * LR + 1e-4 * maxAbs(w));
    }
  });
});
