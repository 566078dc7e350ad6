// Forward throughput and peak RSS of Model.forward on the random Qwen2.5-0.5B folder.
//   node dist/bench/forward.js [--layers 24 | --model DIR] [--dtypes float32,bfloat16] [--seq 512]
//        [--batch 1] [--runs 5] [--warmup 1] [--threads 2] [--last-only]
// One JSON line per case on stdout; each case runs in its own child process so its peak RSS is its own.
// Timed: the awaited Model.forward call, i.e. the native forward plus the copy of the float32 logits
// into a Float32Array (full [batch, seq, vocab] logits unless --last-only, as HF returns them).
import { fileURLToPath } from 'node:url';
import { Model, torchInfo } from '../lib/model/model.js';
import { knobs, list, median, num, parseArgs, procStatusMb, resetPeakRss, round, runChild, timeRuns, tokenIds } from './common.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  seq: number;
  batch: number;
  runs: number;
  warmup: number;
  threads: number;
  lastOnly: boolean;
}

async function child(c: Case): Promise<void> {
  const t0 = performance.now();
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads });
  const loadMs = performance.now() - t0;
  const loadPeak = procStatusMb('VmHWM');
  const reset = resetPeakRss();
  const ids = tokenIds(c.batch, c.seq, model.config.vocabSize);
  const times = await timeRuns(() => model.forward(ids, { lastOnly: c.lastOnly }), c.runs, c.warmup);
  const ms = median(times);
  const info = torchInfo();
  console.log(JSON.stringify({
    bench: 'forward', impl: 'lorafit', dtype: c.dtype, seq: c.seq, batch: c.batch, layers: model.config.numHiddenLayers,
    last_only: c.lastOnly, tokens_per_s: round((c.batch * c.seq) / (ms / 1000)), ms_per_run: round(ms),
    runs_ms: times.map((t) => round(t)), peak_rss_mb: procStatusMb('VmHWM'), load_peak_rss_mb: loadPeak,
    run_peak_is_after_load: reset, load_ms: round(loadMs), threads: info.threads, torch: info.version, env: knobs(),
  }));
  await model.dispose();
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 24);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  for (const dtype of list(a, 'dtypes', ['float32', 'bfloat16']) as Case['dtype'][]) {
    const kase: Case = {
      model, dtype, seq: num(a, 'seq', 512), batch: num(a, 'batch', 1), runs: num(a, 'runs', 5), warmup: num(a, 'warmup', 1),
      threads: num(a, 'threads', 2), lastOnly: a['last-only'] === true,
    };
    for (const line of await runChild(fileURLToPath(import.meta.url), kase as unknown as Record<string, unknown>)) console.log(line);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
