// Prints bench/out/results.jsonl as a table: lorafit vs HF per case and env variant.
//   node dist/bench/summarize.js [bench/out/results.jsonl]
import { readFileSync } from 'node:fs';

interface Row { [k: string]: unknown }

const file = process.argv[2] ?? 'bench/out/results.jsonl';
const rows: Row[] = readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row);
const key = (r: Row) => [r.variant ?? 'default', r.bench, r.dtype, r.layers, r.seq ?? r.tokens, r.batch ?? 1, r.last_only ? 'last' : ''].join(' | ');
const groups = new Map<string, { lorafit?: Row; hf?: Row }>();
for (const r of rows) {
  const g = groups.get(key(r)) ?? {};
  g[r.impl === 'hf' ? 'hf' : 'lorafit'] = r;  // the last line of a case wins
  groups.set(key(r), g);
}
const metric = (r?: Row) => {
  if (!r) return '-';
  if (r.error) return `error: ${r.error}`;
  if (r.bench === 'loss') return `loss ${r.loss_ms} ms, +grad ${r.loss_train_ms} ms`;
  return `${r.tokens_per_s} tok/s, ${r.ms_per_run} ms, ${r.peak_rss_mb} MB`;
};
console.log('variant | bench | dtype | layers | seq/tokens | batch | | lorafit | hf');
for (const [k, g] of groups) console.log(`${k} | ${metric(g.lorafit)} | ${metric(g.hf)}`);
