// LoRA training-step throughput (forward + backward through Model.lossAndGrad) and peak RSS.
//   node dist/bench/train-step.js [--layers 24 | --model DIR] [--dtypes bfloat16,float32] [--seq 512]
//        [--batches 1,4] [--rank 16] [--alpha 32] [--runs 3] [--warmup 1] [--threads 2]
// LoRA r=16 on all seven projections of every layer (targetModules 'all-linear'), dropout 0,
// labels = input ids (every position but the first is a loss token). One JSON line per case, each
// case in its own child process. No optimizer step (lossAndGrad has none yet); HF's baseline times
// the same loss.backward() without optimizer.step().
import { fileURLToPath } from 'node:url';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, torchInfo } from '../lib/model/model.js';
import { knobs, list, median, num, parseArgs, procStatusMb, resetPeakRss, round, runChild, timeRuns, tokenIds } from './common.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  seq: number;
  batch: number;
  rank: number;
  alpha: number;
  runs: number;
  warmup: number;
  threads: number;
}

async function child(c: Case): Promise<void> {
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads });
  const loadPeak = procStatusMb('VmHWM');
  const adapter = await LoraAdapter.create(model, { rank: c.rank, alpha: c.alpha, targetModules: 'all-linear', seed: 1 });
  const reset = resetPeakRss();
  const ids = tokenIds(c.batch, c.seq, model.config.vocabSize);
  let last = { loss: NaN, tokens: 0, gradNorm: NaN };
  const times = await timeRuns(async () => {
    last = await model.lossAndGrad([{ inputIds: ids, labels: ids }]);
  }, c.runs, c.warmup);
  const ms = median(times);
  const info = torchInfo();
  console.log(JSON.stringify({
    bench: 'train_step', impl: 'lorafit', dtype: c.dtype, seq: c.seq, batch: c.batch, layers: model.config.numHiddenLayers,
    rank: c.rank, lora_modules: adapter.modules.length, tokens_per_s: round((c.batch * c.seq) / (ms / 1000)), ms_per_run: round(ms),
    runs_ms: times.map((t) => round(t)), loss: round(last.loss, 4), peak_rss_mb: procStatusMb('VmHWM'), load_peak_rss_mb: loadPeak,
    run_peak_is_after_load: reset, threads: info.threads, torch: info.version, env: knobs(),
  }));
  await model.dispose();
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 24);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  for (const dtype of list(a, 'dtypes', ['bfloat16', 'float32']) as Case['dtype'][]) {
    for (const batch of list(a, 'batches', ['1', '4']).map(Number)) {
      const kase: Case = {
        model, dtype, seq: num(a, 'seq', 512), batch, rank: num(a, 'rank', 16), alpha: num(a, 'alpha', 32),
        runs: num(a, 'runs', 3), warmup: num(a, 'warmup', 1), threads: num(a, 'threads', 2),
      };
      for (const line of await runChild(fileURLToPath(import.meta.url), kase as unknown as Record<string, unknown>)) console.log(line);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
