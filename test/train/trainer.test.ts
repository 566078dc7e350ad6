// Trainer on a tiny model and real text: it learns, is deterministic, resumes exactly, cancels
// cleanly and refuses non-finite losses.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer, type TrainerInit } from '../../lib/train/trainer.js';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { byteExamples, yodaLines } from '../helpers/byte-data.js';
import { HF } from '../helpers/golden.js';

const lines = yodaLines();
const train = byteExamples(lines.slice(0, 32));
const evalSet = byteExamples(lines.slice(32));
const root = mkdtempSync(join(tmpdir(), 'lorafit-trainer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function setup(extra: Partial<TrainerInit> = {}, seed = 1, dropout = 0) {
  const model = await Model.load(join(HF, 'llama', 'model'));
  const adapter = await LoraAdapter.create(model, { rank: 8, alpha: 16, targetModules: 'all-linear', seed, dropout });
  const trainer = new Trainer({ model, adapter, trainData: train, evalData: evalSet, learningRate: 3e-3, batchSize: 4, seed: 7, ...extra });
  return { model, adapter, trainer };
}

const stepLosses = (history: Record<string, unknown>[]) => history.filter((h) => h.type === 'step').map((h) => h.loss as number);

describe('Trainer', () => {
  it('lowers eval loss on Yoda lines by a clear margin', async () => {
    const { model, trainer } = await setup({ maxSteps: 40, lrScheduler: 'cosine', warmupSteps: 4 });
    const before = await trainer.evaluateLoss();
    const steps: number[] = [];
    trainer.on('step', (s) => steps.push(s.step));
    const result = await trainer.fit();
    expect(steps).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(result.globalStep).toBe(40);
    expect(before.evalLoss - result.evalLoss!).toBeGreaterThan(1.0);
    await model.dispose();
  });

  it('is deterministic: the same seed and data give the same losses', async () => {
    const a = await setup({ maxSteps: 5 });
    const b = await setup({ maxSteps: 5 });
    const ra = await a.trainer.fit();
    const rb = await b.trainer.fit();
    expect(stepLosses(rb.history)).toEqual(stepLosses(ra.history));
    const c = await setup({ maxSteps: 5, seed: 8 });
    const rc = await c.trainer.fit();
    expect(stepLosses(rc.history)).not.toEqual(stepLosses(ra.history));
    await Promise.all([a.model.dispose(), b.model.dispose(), c.model.dispose()]);
  });

  it('resumes from a checkpoint with the losses of the uninterrupted run (1e-6)', async () => {
    const out = join(root, 'resume');
    // LoRA dropout on: its per-step seeds must be re-derived on resume too.
    const opts = { maxSteps: 8, saveSteps: 3, outputDir: out, gradientAccumulationSteps: 2, batchSize: 2, lrScheduler: 'linear' as const, warmupSteps: 2 };
    const full = await setup(opts, 1, 0.1);
    const whole = await full.trainer.fit();
    expect(existsSync(join(out, 'checkpoint-3', 'trainer_state.json'))).toBe(true);
    const again = await setup({ ...opts, outputDir: join(root, 'resume-2') }, 99, 0.1);  // other init: resume must overwrite it
    const resumed = await again.trainer.fit({ resumeFrom: join(out, 'checkpoint-3') });
    const a = stepLosses(whole.history);
    const b = stepLosses(resumed.history);
    expect(b.length).toBe(8);
    for (let i = 3; i < 8; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-6);
    await Promise.all([full.model.dispose(), again.model.dispose()]);
  });

  it('writes metrics.jsonl, a loss curve and PEFT checkpoints, pruned to saveTotalLimit', async () => {
    const out = join(root, 'files');
    const { model, trainer } = await setup({ maxSteps: 6, saveSteps: 2, saveTotalLimit: 2, evalSteps: 2, outputDir: out });
    const events: string[] = [];
    const collect = (async () => {
      for await (const e of trainer.events()) events.push(e.type);
    })();
    await trainer.fit();
    await collect;
    expect(events.filter((e) => e === 'step').length).toBe(6);
    expect(events.filter((e) => e === 'eval').length).toBe(3);
    expect(events.at(-1)).toBe('end');
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.type === 'step').length).toBe(6);
    expect(readFileSync(join(out, 'loss-curve.svg'), 'utf8')).toMatch(/^<svg/);
    const checkpoints = readdirSync(out).filter((d) => d.startsWith('checkpoint-'));
    expect(checkpoints.length).toBeLessThanOrEqual(3);  // 2 newest + the best one
    expect(checkpoints).toContain('checkpoint-6');
    const adapter = readSafetensors(join(out, 'checkpoint-6', 'adapter', 'adapter_model.safetensors'));
    expect(adapter.metadata.format).toBe('pt');
    await model.dispose();
  });

  it('stops on an AbortSignal between steps, leaving a checkpoint that resumes', async () => {
    const out = join(root, 'abort');
    const ac = new AbortController();
    const { model, trainer } = await setup({ maxSteps: 20, outputDir: out, signal: ac.signal });
    trainer.on('step', (s) => {
      if (s.step === 3) ac.abort();
    });
    const err = await trainer.fit().catch((e) => e);
    expect(err.code).toBe('E_ABORTED');
    expect(err.checkpoint).toBe(join(out, 'checkpoint-3'));
    const again = await setup({ maxSteps: 5, outputDir: out });
    const r = await again.trainer.fit({ resumeFrom: 'latest' });
    expect(r.globalStep).toBe(5);
    await Promise.all([model.dispose(), again.model.dispose()]);
  });

  it('stops with E_NON_FINITE on a diverging run and never writes a non-finite adapter', async () => {
    const out = join(root, 'nan');
    const { model, trainer } = await setup({ maxSteps: 30, optimizer: 'sgd', learningRate: 1e30, maxGradNorm: 0, saveSteps: 1, outputDir: out });
    const err = await trainer.fit().catch((e) => e);
    expect(err.code).toBe('E_NON_FINITE');
    for (const d of readdirSync(out).filter((x) => x.startsWith('checkpoint-'))) {
      const st = readSafetensors(join(out, d, 'adapter', 'adapter_model.safetensors'));
      for (const t of st.tensors.values()) expect(toFloat32(t).every(Number.isFinite)).toBe(true);
    }
    await model.dispose();
  });

  it("onNonFinite: 'skip' gives up after maxConsecutiveSkips non-finite steps in a row, instead of skipping forever", async () => {
    // lr 1e30 makes the weights absurd (finite) after step 1: every later loss is NaN.
    const skip = await setup({ maxSteps: 30, optimizer: 'sgd', learningRate: 1e30, maxGradNorm: 0, onNonFinite: 'skip' });
    const skipped: number[] = [];
    const steps: number[] = [];
    skip.trainer.on('skip', (s) => skipped.push(s.step));
    skip.trainer.on('step', (s) => steps.push(s.step));
    const err = await skip.trainer.fit().catch((e) => e);
    expect(err.code).toBe('E_NON_FINITE');
    expect(err.message).toMatch(/10 non-finite steps in a row .*maxConsecutiveSkips: 10/);
    expect(steps).toEqual([1]);
    expect(skipped).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);  // the 10th in a row stops instead
    const three = await setup({ maxSteps: 30, optimizer: 'sgd', learningRate: 1e30, maxGradNorm: 0, onNonFinite: 'skip', maxConsecutiveSkips: 3 });
    await expect(three.trainer.fit()).rejects.toThrow(/3 non-finite steps in a row/);
    await Promise.all([skip.model.dispose(), three.model.dispose()]);
  });

  it("onNonFinite: 'skip' stops at once when the trained weights themselves are non-finite", async () => {
    const { model, adapter, trainer } = await setup({ maxSteps: 10, onNonFinite: 'skip' });
    const t = await adapter.tensors();
    const key = [...t.keys()].find((k) => k.includes('lora_A'))!;
    t.get(key)!.data[5] = Number.POSITIVE_INFINITY;  // as an overflowing update would leave it
    await adapter.setTensors(t);
    const skipped: number[] = [];
    trainer.on('skip', (s) => skipped.push(s.step));
    const err = await trainer.fit().catch((e) => e);
    expect(err.code).toBe('E_NON_FINITE');
    expect(err.message).toContain(key);
    expect(err.message).toMatch(/is itself non-finite/);
    expect(skipped).toEqual([]);
    expect(() => new Trainer({ model, adapter, trainData: train, maxConsecutiveSkips: 0 })).toThrow(/maxConsecutiveSkips/);
    expect(() => new Trainer({ model, adapter, trainData: train, maxConsecutiveSkips: 2.5 })).toThrow(/maxConsecutiveSkips/);
    await model.dispose();
  });

  it('keeps the event loop free while training: p99 delay < 50 ms (perf_hooks.monitorEventLoopDelay)', async () => {
    const { model, trainer } = await setup({ maxSteps: 60, batchSize: 8 });
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const t0 = performance.now();
    await trainer.fit();
    const ms = performance.now() - t0;
    h.disable();
    const p99 = h.percentile(99) / 1e6;
    console.log(`event loop during fit (${ms.toFixed(0)} ms): p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms, ${h.count} samples`);
    expect(h.count).toBeGreaterThan(50);  // enough 1 ms samples to mean something
    expect(p99).toBeLessThan(50);
    await model.dispose();
  });

  it('two Trainers on two models in one process, run together, each equal its run alone', async () => {
    // Different data, seeds and LoRA dropout on, so a shared RNG or shared state would show.
    const other = byteExamples(lines.slice(8, 40).reverse());
    const optsA = { maxSteps: 6 };
    const optsB = { maxSteps: 6, trainData: other, seed: 11, learningRate: 1e-3, gradientAccumulationSteps: 2, batchSize: 2 };
    const run = async (o: Partial<TrainerInit>, seed: number) => {
      const s = await setup(o, seed, 0.1);
      return { ...s, result: s.trainer.fit() };
    };
    const aloneA = await run(optsA, 1);
    const lossesA = stepLosses((await aloneA.result).history);
    const aloneB = await run(optsB, 2);
    const lossesB = stepLosses((await aloneB.result).history);
    const [a, b] = await Promise.all([run(optsA, 1), run(optsB, 2)]);
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(stepLosses(ra.history)).toEqual(lossesA);
    expect(stepLosses(rb.history)).toEqual(lossesB);
    expect(lossesA).not.toEqual(lossesB);
    // The trained adapters too, bit for bit.
    const same = async (x: LoraAdapter, y: LoraAdapter) => {
      const tx = await x.tensors();
      const ty = await y.tensors();
      for (const [k, v] of tx) expect(Buffer.from(ty.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k).toBe(true);
    };
    await same(a.adapter, aloneA.adapter);
    await same(b.adapter, aloneB.adapter);
    await Promise.all([aloneA, aloneB, a, b].map((x) => x.model.dispose()));
  });

  it('rejects bad options by name', async () => {
    const model = await Model.load(join(HF, 'llama', 'model'));
    const adapter = await LoraAdapter.create(model);
    expect(() => new Trainer({ model, adapter, trainData: train, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => new Trainer({ model, adapter, trainData: train, lrScheduler: 'step' as never })).toThrow(/lrScheduler/);
    expect(() => new Trainer({ model, adapter, trainData: [] })).toThrow(/trainData/);
    await model.dispose();
  });
});
