// Decoding speed: greedy generation with the native KV cache on the random Qwen2.5-0.5B folder.
//   node dist/bench/generate.js [--layers 24 | --model DIR] [--dtypes bfloat16,float32] [--prompt 32] [--new 64] [--runs 3]
// One JSON line per case (own child process). decode_tokens_per_s counts new tokens after the first
// (prefill excluded: prefill_ms is the time to the first new token).
import { fileURLToPath } from 'node:url';
import { Model, torchInfo } from '../lib/model/model.js';
import { knobs, list, median, num, parseArgs, procStatusMb, round, runChild, tokenIds } from './common.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  prompt: number;
  newTokens: number;
  runs: number;
  threads: number;
}

async function child(c: Case): Promise<void> {
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads });
  const [prompt] = tokenIds(1, c.prompt, model.config.vocabSize);
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r <= c.runs; r++) {
    const t0 = performance.now();
    let first = 0;
    let n = 0;
    for await (const _ of model.generateStream(prompt, { maxNewTokens: c.newTokens, eosTokenId: [] })) {
      if (n++ === 0) first = performance.now();
    }
    const end = performance.now();
    if (r === 0) continue;  // warm-up
    prefill.push(first - t0);
    decode.push(((n - 1) * 1000) / (end - first));
  }
  const info = torchInfo();
  console.log(JSON.stringify({
    bench: 'generate', impl: 'lorafit', dtype: c.dtype, prompt: c.prompt, new_tokens: c.newTokens, layers: model.config.numHiddenLayers,
    decode_tokens_per_s: round(median(decode)), prefill_ms: round(median(prefill)), runs_decode_tokens_per_s: decode.map((d) => round(d)),
    peak_rss_mb: procStatusMb('VmHWM'), threads: info.threads, torch: info.version, env: knobs(),
  }));
  await model.dispose();
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 24);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  for (const dtype of list(a, 'dtypes', ['bfloat16', 'float32']) as Case['dtype'][]) {
    const kase: Case = { model, dtype, prompt: num(a, 'prompt', 32), newTokens: num(a, 'new', 64), runs: num(a, 'runs', 3), threads: num(a, 'threads', 2) };
    for (const line of await runChild(fileURLToPath(import.meta.url), kase as unknown as Record<string, unknown>)) console.log(line);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
