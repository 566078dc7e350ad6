// A Trainer step is one await on one native call: the micro-batches (gradient accumulation),
// the gradient norm, clipping, the non-finite check and the AdamW update all run inside
// NativeTrainState.step. Counted at the model's one channel to the addon.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { channelOf } from '../../lib/model/channel.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { byteExamples, yodaLines } from '../helpers/byte-data.js';
import { HF } from '../helpers/golden.js';

/** Counts the native calls that go through the model's channel between 'step' events. */
function countCallsPerStep(model: Model, trainer: Trainer): number[] {
  const channel = channelOf(model);
  const call = channel.call.bind(channel);
  let calls = 0;
  channel.call = ((fn) => {
    calls++;
    return call(fn);
  }) as typeof channel.call;
  const perStep: number[] = [];
  let last = 0;
  trainer.on('step', () => {
    perStep.push(calls - last);
    last = calls;
  });
  return perStep;
}

describe('one native call per optimizer step', () => {
  it('LoRA with gradient accumulation and clipping: every step after the first is exactly one call', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'));
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
    const trainer = new Trainer({ model, adapter, trainData: byteExamples(yodaLines().slice(0, 16)), maxSteps: 4, batchSize: 2, gradientAccumulationSteps: 2, maxGradNorm: 0.5, learningRate: 1e-2, loggingSteps: 1, seed: 3 });
    const perStep = countCallsPerStep(model, trainer);
    const clipped: boolean[] = [];
    trainer.on('step', (s) => clipped.push(s.clipped));
    const result = await trainer.fit();
    expect(result.globalStep).toBe(4);
    // the first step also carries fit()'s setup (activating the adapter)
    expect(perStep.slice(1)).toEqual([1, 1, 1]);
    expect(perStep[0]).toBeLessThanOrEqual(2);
    // the native step clipped (a gradient norm above 0.5 on this tiny model at lr 1e-2)
    expect(clipped.some(Boolean)).toBe(true);
  });

  it('full-parameter training: one call per step too', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'));
    const trainer = new Trainer({ model, fullParameter: true, trainData: byteExamples(yodaLines().slice(0, 8)), maxSteps: 3, batchSize: 2, learningRate: 1e-4, loggingSteps: 1 });
    const perStep = countCallsPerStep(model, trainer);
    await trainer.fit();
    expect(perStep.slice(1)).toEqual([1, 1]);
  });
});
