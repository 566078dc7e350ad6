// Data-parallel training over torch.distributed (Gloo, loopback, 1 thread a rank): 2 ranks at
// batch 2 compute what 1 process computes at batch 4 (the reference is the 1-process run, not
// numbers), with torchrun's environment set by hand; a 2-rank checkpoint resumes at 1 rank; a
// killed rank stops the other with an error naming it.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, maxTensorDiff, runRanks, runSingle, startRank, torchrunEnv, type RankResult } from './dist-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'lorafit-dist-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// AdamW's update is scale-free, so float32 rounding (a different summation order) moves the
// weights by about lr x its relative size: at lr 1e-2 even one process at batch 4 and at batch 2 x
// accumulation 2 (the same step) differ by ~2e-5 after 4 steps here. The runs use lr 1e-3
// (the child's default), where that floor is below the 1e-5 the ranks must meet.
// 10 examples: at a global batch of 4 an epoch is 3 steps (the last holds 2), so 4 steps cross
// an epoch boundary and a short global batch; at 8 (accumulation 2) the second step holds 2.
const base = { trainCount: 10, evalCount: 5, maxSteps: 4 };

function expectSameRun(one: RankResult, ranks: RankResult[]): void {
  expect(ranks.map((r) => r.worldSize)).toEqual([2, 2]);
  // The step's loss is normalised by the global token count: the same loss, the same tokens.
  expect(ranks[0].losses.map((l) => l.tokens)).toEqual(one.losses.map((l) => l.tokens));
  for (let i = 0; i < one.losses.length; i++) expect(Math.abs(ranks[0].losses[i].loss - one.losses[i].loss)).toBeLessThan(1e-5);
  // The adapter moved (lora_B starts at zero), identically on both ranks and as in one process.
  const moved = Math.max(...Object.entries(one.tensors).filter(([k]) => k.includes('lora_B')).flatMap(([, v]) => v.map(Math.abs)));
  expect(moved).toBeGreaterThan(1e-3);
  expect(maxTensorDiff(ranks[0].tensors, ranks[1].tensors)).toBe(0);
  expect(maxTensorDiff(ranks[0].tensors, one.tensors)).toBeLessThan(1e-5);
  // Eval sharded (every other example), then reduced: the 1-process eval loss.
  expect(ranks[0].evalLoss).toBeDefined();
  expect(Math.abs(ranks[0].evalLoss! - one.evalLoss!)).toBeLessThan(1e-5);
  expect(ranks[1].evalLoss).toBe(ranks[0].evalLoss);
}

describe('2 ranks at batch 2 equal 1 process at batch 4', () => {
  let single: RankResult;
  const twoRankOut = join(root, 'two-rank');

  it('without gradient accumulation (and rank 0 alone writes)', async () => {
    single = await runSingle({ ...base, batchSize: 4, result: join(root, 'single') });
    const ranks = await runRanks(2, { ...base, batchSize: 2, outputDir: twoRankOut, saveSteps: 2, result: join(root, 'two') });
    expectSameRun(single, ranks);
    expect(ranks[0].losses.every((l) => typeof l.reduceMs === 'number' && l.reduceMs >= 0)).toBe(true);
    // One writer: one metrics line per step and per eval, checkpoints at steps 2 and 4.
    const metrics = readFileSync(join(twoRankOut, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
    expect(metrics.filter((m) => m.type === 'step').map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(twoRankOut, 'checkpoint-2', 'adapter', 'adapter_model.safetensors'))).toBe(true);
    const state = JSON.parse(readFileSync(join(twoRankOut, 'checkpoint-2', 'trainer_state.json'), 'utf8')) as { worldSize: number; globalBatchSize: number };
    expect([state.worldSize, state.globalBatchSize]).toEqual([2, 4]);
  }, 120_000);

  it('with gradient accumulation', async () => {
    const one = await runSingle({ ...base, batchSize: 4, accumulation: 2, result: join(root, 'single-acc') });
    const ranks = await runRanks(2, { ...base, batchSize: 2, accumulation: 2, result: join(root, 'two-acc') });
    expectSameRun(one, ranks);
  }, 120_000);

  it('a 2-rank checkpoint resumes at 1 rank with the losses of the uninterrupted run', async () => {
    const resumed = await runSingle({ ...base, batchSize: 4, resumeFrom: join(twoRankOut, 'checkpoint-2'), result: join(root, 'resumed') });
    expect(resumed.losses.map((l) => l.step)).toEqual([3, 4]);
    for (const l of resumed.losses) expect(Math.abs(l.loss - single.losses[l.step - 1].loss)).toBeLessThan(1e-5);
    expect(maxTensorDiff(resumed.tensors, single.tensors)).toBeLessThan(1e-5);
    // Another global batch (2 instead of 4) cannot continue that data order.
    const bad = await startRank({ ...base, batchSize: 2, resumeFrom: join(twoRankOut, 'checkpoint-2'), result: join(root, 'bad') }).exit;
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/E_CHECKPOINT[\s\S]*global batch of 4[\s\S]*this run's is 2/);
  }, 120_000);
});

it('a rank killed mid-run stops the other within 60 s with an error naming it', async () => {
  const port = await freePort();
  const opts = { trainCount: 10, maxSteps: 100_000, batchSize: 2, distributed: true, result: join(root, 'fault') };
  const r0 = startRank(opts, torchrunEnv(0, 2, port));
  const r1 = startRank(opts, torchrunEnv(1, 2, port));
  await new Promise<void>((resolve) => {
    let text = '';
    r1.child.stdout!.on('data', (d) => {
      text += d;
      if (/step 3\n/.test(text)) resolve();
    });
  });
  r1.child.kill('SIGKILL');
  const killedAt = Date.now();
  const e0 = await r0.exit;
  expect((await r1.exit).signal).toBe('SIGKILL');
  expect(e0.code).not.toBe(0);
  expect(Date.now() - killedAt).toBeLessThan(60_000);
  expect(e0.stderr).toMatch(/E_DISTRIBUTED/);
  expect(e0.stderr).toMatch(/rank 0 of 2: [a-z -]*all-reduce failed: rank 1 stopped \(no heartbeat\)/);
}, 120_000);

it('of 3 ranks, both survivors of a killed rank name it', async () => {
  const port = await freePort();
  const opts = { trainCount: 10, maxSteps: 100_000, batchSize: 1, distributed: true, result: join(root, 'fault3') };
  const ranks = [0, 1, 2].map((r) => startRank(opts, torchrunEnv(r, 3, port)));
  await new Promise<void>((resolve) => {
    let text = '';
    ranks[2].child.stdout!.on('data', (d) => {
      text += d;
      if (/step 2\n/.test(text)) resolve();
    });
  });
  ranks[2].child.kill('SIGKILL');
  const [e0, e1] = await Promise.all([ranks[0].exit, ranks[1].exit]);
  for (const [r, e] of [[0, e0], [1, e1]] as const) {
    expect(e.code).not.toBe(0);
    expect(e.stderr).toMatch(new RegExp(`rank ${r} of 3: [a-z -]*failed: rank 2 stopped \\(no heartbeat\\)`));
  }
}, 120_000);

it('a killed rank 0 is named as the host of the rendezvous', async () => {
  const port = await freePort();
  const opts = { trainCount: 10, maxSteps: 100_000, batchSize: 2, distributed: true, result: join(root, 'fault0') };
  const r0 = startRank(opts, torchrunEnv(0, 2, port));
  const r1 = startRank(opts, torchrunEnv(1, 2, port));
  await new Promise<void>((resolve) => {
    let text = '';
    r0.child.stdout!.on('data', (d) => {
      text += d;
      if (/step 2\n/.test(text)) resolve();
    });
  });
  r0.child.kill('SIGKILL');
  const e1 = await r1.exit;
  expect(e1.code).not.toBe(0);
  expect(e1.stderr).toMatch(/rank 1 of 2: [a-z -]*failed: rank 0 stopped or became unreachable \(the rendezvous it hosts at 127\.0\.0\.1:\d+ does not answer\)/);
}, 120_000);

it('an abort on one rank stops every rank at the same step; rank 0 writes the checkpoint', async () => {
  const port = await freePort();
  const out = join(root, 'abort');
  const base = { trainCount: 10, maxSteps: 100, batchSize: 2, distributed: true, outputDir: out, result: join(root, 'abort') };
  const [e0, e1] = await Promise.all([startRank(base, torchrunEnv(0, 2, port)).exit, startRank({ ...base, abortAtStep: 3 }, torchrunEnv(1, 2, port)).exit]);
  for (const e of [e0, e1]) {
    expect(e.code, e.stderr).toBe(3);
    expect(e.stdout).toMatch(/aborted training aborted at step 3/);
    expect(e.stdout).not.toMatch(/step 4/);
  }
  expect(existsSync(join(out, 'checkpoint-3', 'trainer_state.json'))).toBe(true);
}, 120_000);
