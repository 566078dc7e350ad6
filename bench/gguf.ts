// Load time and peak RSS of a GGUF model (default: SmolLM2-135M-Instruct Q4_1, the default model),
// lorafit's Model.load beside transformers' `from_pretrained(dir, gguf_file=...)` in the same run,
// alternating the two so machine drift hits both alike. Each load runs in its own child process
// (peak RSS per load). One JSON line per implementation and dtype, with the median of --runs.
//   npx tsc -p . && node dist/bench/gguf.js [--gguf FILE] [--runs 3] [--dtypes float32,bfloat16] [--threads 2]
// Needs the venv's python for the HF side (LORAFIT_PYTHON, else ~/.cache/lorafit/venv/bin/python).
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { smollm2Path, cacheDir } from '../lib/model/default-model.js';
import { Model, type Dtype } from '../lib/model/model.js';
import { list, median, num, parseArgs, round, runChild } from './common.js';

const args = parseArgs(process.argv.slice(2));

async function child(kase: { gguf: string; dtype: Dtype; threads: number }): Promise<void> {
  const t0 = performance.now();
  const model = await Model.load(kase.gguf, { dtype: kase.dtype, threads: kase.threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  // ru_maxrss: the process-lifetime peak, which here is the load's (Node itself is ~50 MiB).
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(JSON.stringify({ loadSeconds, peakRssMiB, params: model.numParameters() }));
  await model.dispose();
}

function hfLoad(py: string, gguf: string, dtype: string, threads: number): Record<string, number> {
  const script = fileURLToPath(new URL('../../bench/gguf-hf.py', import.meta.url));
  const r = spawnSync(py, [script, '--gguf', gguf, '--dtype', dtype, '--threads', String(threads)], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`gguf-hf.py failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(line);
}

if (args.child) {
  await child(JSON.parse(String(args.child)));
} else {
  const gguf = typeof args.gguf === 'string' ? args.gguf : smollm2Path();
  const runs = num(args, 'runs', 3);
  const threads = num(args, 'threads', 2);
  const py = process.env.LORAFIT_PYTHON ?? `${cacheDir()}/venv/bin/python`;
  const script = fileURLToPath(import.meta.url);
  for (const dtype of list(args, 'dtypes', ['float32', 'bfloat16']) as Dtype[]) {
    const ours: Record<string, number>[] = [];
    const hf: Record<string, number>[] = [];
    for (let i = 0; i < runs; i++) {
      const lines = await runChild(script, { gguf, dtype, threads });
      const parsed = JSON.parse(lines[lines.length - 1]);
      if (parsed.error) throw new Error(`lorafit load failed: ${parsed.error}`);
      ours.push(parsed);
      hf.push(hfLoad(py, gguf, dtype, threads));
    }
    const common = { bench: 'gguf-load', file: basename(gguf), dtype, threads, runs, cpu: cpus()[0]?.model, dir: basename(dirname(gguf)) };
    for (const [impl, rows] of [['lorafit', ours], ['hf', hf]] as const) {
      console.log(JSON.stringify({
        ...common,
        impl,
        loadSeconds: round(median(rows.map((r) => r.loadSeconds)), 2),
        peakRssMiB: Math.round(median(rows.map((r) => r.peakRssMiB))),
        params: rows[0].params,
      }));
    }
  }
}
