// Data-parallel step time: 1 rank vs N ranks (Gloo, loopback, 1 thread a rank by default) on the
// Qwen2.5-0.5B shape, and the all-reduce time per step.
//   node dist/bench/distributed.js [--layers 24 | --model DIR] [--worlds 1,2] [--dtype bfloat16]
//        [--seq 256] [--batch 1] [--steps 4] [--warmup 1] [--threads 1] [--rank 16]
// Every case trains the same global batch (batch x max(worlds) examples a step) with Trainer.fit:
// at world size W each rank takes batch x max(worlds) / W of it, so the cases differ only in how
// the step is split. LoRA r=16 on all seven projections. One JSON line per world size (rank 0's):
// median step ms, the median of the step's gradient+loss all-reduce (StepEvent.reduceMs), tokens/s.
import { spawn } from 'node:child_process';
import { freePort } from '../lib/util/free-port.js';
import { fileURLToPath } from 'node:url';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, torchInfo } from '../lib/model/model.js';
import { Trainer } from '../lib/train/trainer.js';
import { knobs, list, median, num, parseArgs, round, tokenIds } from './common.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  world: number;
  perRank: number;
  seq: number;
  steps: number;
  warmup: number;
  threads: number;
  rank: number;
}

async function child(c: Case): Promise<void> {
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads });
  const adapter = await LoraAdapter.create(model, { rank: c.rank, alpha: 2 * c.rank, targetModules: 'all-linear', seed: 1 });
  const global = c.perRank * c.world;
  const rows = tokenIds(global * (c.steps + c.warmup), c.seq, model.config.vocabSize);
  const trainData = rows.map((r) => ({ inputIds: r, labels: r }));
  const trainer = new Trainer({ model, adapter, trainData, batchSize: c.perRank, maxSteps: c.steps + c.warmup, shuffle: false, distributed: c.world > 1 ? true : undefined });
  const stepMs: number[] = [];
  const reduceMs: number[] = [];
  let last = performance.now();
  trainer.on('step', (s) => {
    const now = performance.now();
    if (s.step > c.warmup) {
      stepMs.push(now - last);
      reduceMs.push(s.reduceMs ?? 0);
    }
    last = now;
  });
  await trainer.fit();
  if (trainer.rank === 0) {
    const ms = median(stepMs);
    console.log(JSON.stringify({
      bench: 'distributed', world: c.world, backend: c.world > 1 ? 'gloo' : 'none', dtype: c.dtype, layers: model.config.numHiddenLayers, seq: c.seq,
      global_batch: global, per_rank_batch: c.perRank, threads_per_rank: c.threads, lora_rank: c.rank, lora_params: adapter.trainableParameters().trainable,
      step_ms: round(ms), steps_ms: stepMs.map((t) => round(t)), allreduce_ms: round(median(reduceMs), 2), tokens_per_s: round((global * c.seq) / (ms / 1000)),
      torch: torchInfo().version, env: knobs(),
    }));
  }
  await model.dispose();
}

/** The ranks of one case as child processes (torchrun's environment); rank 0's JSON lines. */
async function runCase(c: Case): Promise<string[]> {
  const port = await freePort();
  const script = fileURLToPath(import.meta.url);
  const runs = Array.from({ length: c.world }, (_, rank) =>
    new Promise<string[]>((resolve) => {
      const env = { ...process.env, OMP_NUM_THREADS: String(c.threads), RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(c.world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) };
      const p = spawn(process.execPath, [script, '--child', JSON.stringify(c)], { stdio: ['ignore', 'pipe', 'inherit'], env });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('close', (code, signal) => {
        const lines = out.split('\n').filter((l) => l.startsWith('{'));
        if (code !== 0) lines.push(JSON.stringify({ bench: 'distributed', world: c.world, rank, error: `exited with ${signal ?? code}` }));
        resolve(lines);
      });
    }),
  );
  return (await Promise.all(runs)).flat();
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 24);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  const worlds = list(a, 'worlds', ['1', '2']).map(Number);
  const global = num(a, 'batch', 1) * Math.max(...worlds);
  for (const world of worlds) {
    if (global % world !== 0) throw new Error(`the global batch ${global} does not divide into ${world} ranks`);
    const kase: Case = {
      model, dtype: (a.dtype as Case['dtype']) ?? 'bfloat16', world, perRank: global / world, seq: num(a, 'seq', 256),
      steps: num(a, 'steps', 4), warmup: num(a, 'warmup', 1), threads: num(a, 'threads', 1), rank: num(a, 'rank', 16),
    };
    for (const line of await runCase(kase)) console.log(line);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
