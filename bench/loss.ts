// Cost of the language-model loss over 2,048 label tokens against the 151,936-token vocabulary.
//   node dist/bench/loss.js [--layers 1 | --model DIR] [--dtypes bfloat16,float32] [--tokens 2048]
//        [--runs 5] [--warmup 1] [--threads 2]
// Runs on a 1-layer copy of the random Qwen2.5-0.5B by default, so the loss dominates and the
// subtraction below is not drowned in decoder noise. Input: one row of tokens+1 ids, labels = ids,
// so exactly `tokens` positions are scored. Per dtype, in one child process:
//   forward_last_ms  Model.forward(ids, {lastOnly:true}): decoder + lm_head on one position
//   eval_ms          Model.evalLoss: decoder + lm_head on every position + cross-entropy (no grad)
//   loss_ms          eval_ms - forward_last_ms: the loss head (lm_head matmul + upcast + CE)
//   train_ms         Model.lossAndGrad with LoRA r=16 on the layer: the same plus every backward
//   loss_train_ms    train_ms - 2 * forward_last_ms: the loss head forward+backward, assuming the
//                    decoder's backward costs about twice its forward (a proxy, see README)
import { fileURLToPath } from 'node:url';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, torchInfo } from '../lib/model/model.js';
import { knobs, list, median, num, parseArgs, procStatusMb, resetPeakRss, round, runChild, timeRuns, tokenIds } from './common.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  tokens: number;
  runs: number;
  warmup: number;
  threads: number;
}

async function child(c: Case): Promise<void> {
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads });
  const reset = resetPeakRss();
  const ids = tokenIds(1, c.tokens + 1, model.config.vocabSize);
  const batch = [{ inputIds: ids, labels: ids }];
  const fwd = await timeRuns(() => model.forward(ids, { lastOnly: true }), c.runs, c.warmup);
  let evalTokens = 0;
  const ev = await timeRuns(async () => {
    evalTokens = (await model.evalLoss(batch)).tokens;
  }, c.runs, c.warmup);
  const evalPeak = procStatusMb('VmHWM');
  await LoraAdapter.create(model, { rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
  const tr = await timeRuns(() => model.lossAndGrad(batch), c.runs, c.warmup);
  const f = median(fwd), e = median(ev), t = median(tr);
  const info = torchInfo();
  console.log(JSON.stringify({
    bench: 'loss', impl: 'lorafit', dtype: c.dtype, tokens: evalTokens, vocab: model.config.vocabSize, layers: model.config.numHiddenLayers,
    loss_ms: round(e - f), loss_train_ms: round(t - 2 * f), forward_last_ms: round(f), eval_ms: round(e), train_ms: round(t),
    runs_ms: { forward_last: fwd.map((x) => round(x)), eval: ev.map((x) => round(x)), train: tr.map((x) => round(x)) },
    eval_peak_rss_mb: evalPeak, peak_rss_mb: procStatusMb('VmHWM'), run_peak_is_after_load: reset,
    threads: info.threads, torch: info.version, env: knobs(),
  }));
  await model.dispose();
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 1);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  for (const dtype of list(a, 'dtypes', ['bfloat16', 'float32']) as Case['dtype'][]) {
    const kase: Case = { model, dtype, tokens: num(a, 'tokens', 2048), runs: num(a, 'runs', 5), warmup: num(a, 'warmup', 1), threads: num(a, 'threads', 2) };
    for (const line of await runChild(fileURLToPath(import.meta.url), kase as unknown as Record<string, unknown>)) console.log(line);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
