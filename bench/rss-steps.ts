// Resident memory over many LoRA training steps: RSS after step 1, 100 and N (default 1,000) on a
// small model, with and without the allocator trim after each step (LORAFIT_MALLOC_TRIM=0). Each
// case runs in its own child process. One JSON line per case.
//   npm run build:ts && node dist/bench/rss-steps.js [--model models/lorafit-tiny | x.gguf] [--steps 1000] [--dtype float32]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, type Dtype } from '../lib/model/model.js';
import { packageRoot } from '../lib/model/native.js';
import { Tokenizer } from '../lib/text/tokenizer.js';
import { Trainer } from '../lib/train/trainer.js';
import { loadAverage } from './flops.js';
import { num, parseArgs } from './common.js';

const mib = () => Math.round(process.memoryUsage().rss / 2 ** 20);

async function child(modelPath: string, steps: number, dtype: Dtype): Promise<void> {
  const model = await Model.load(modelPath, { dtype });
  const tokenizer = await Tokenizer.load(modelPath);
  const lines = readFileSync(join(packageRoot(), 'examples/data/styles/yoda.txt'), 'utf8').split('\n').filter((l) => l.trim());
  const data = [];
  for (const l of lines.slice(0, 400)) {
    const ids = (await tokenizer.encode(l)).slice(0, 256);
    data.push({ inputIds: ids, labels: ids });
  }
  const adapter = await LoraAdapter.create(model, { rank: 8, alpha: 16, targetModules: 'all-linear' });
  const trainer = new Trainer({ model, adapter, trainData: data, maxSteps: steps, batchSize: 4, learningRate: 2e-4, loggingSteps: 1 });
  const at: Record<string, number> = { load: mib() };
  const marks = new Set([1, 10, 100, steps]);
  const t0 = Date.now();
  trainer.on('step', (s) => {
    if (marks.has(s.step)) at[`step${s.step}`] = mib();
  });
  await trainer.fit();
  process.stdout.write(`${JSON.stringify({ rssMiB: at, trainS: (Date.now() - t0) / 1000 })}\n`);
  await model.dispose();
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const modelPath = resolve(String(args.model ?? join(packageRoot(), 'models', 'lorafit-tiny')));
  const steps = num(args, 'steps', 1000);
  const dtype = String(args.dtype ?? 'float32') as Dtype;
  if (args.child) return child(modelPath, steps, dtype);
  const self = fileURLToPath(import.meta.url);
  for (const trim of [true, false]) {
    const before = loadAverage();
    const r = spawnSync(process.execPath, [self, '--child', '1', '--model', modelPath, '--steps', String(steps), '--dtype', dtype], {
      env: { ...process.env, LORAFIT_MALLOC_TRIM: trim ? '1' : '0' },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { rssMiB: Record<string, number>; trainS: number };
    process.stdout.write(`${JSON.stringify({ bench: 'rss_steps', model: modelPath, dtype, steps, mallocTrim: trim, ...out, loadavgBefore: before, loadavgAfter: loadAverage() })}\n`);
  }
}

await main();
