// Full LoRA training steps (Trainer.fit: forward + backward + clipping + AdamW, one native call
// each) and, with --hf, the same case through transformers + PEFT + torch AdamW right after it
// (bench/hf-baseline.py train), so both lines come from the same minutes of the same machine.
//
//   node dist/bench/train.js [--layers 24 | --model DIR] [--cases bfloat16:256:1,float32:256:1] [--all]
//        [--hf] [--runs 3] [--warmup 1] [--rank 16] [--alpha 32] [--threads 2] [--padded] [--no-linear-profile]
//
// A case is dtype:seq:batch with optional flags: `ckpt` (gradient checkpointing), `nf4` (QLoRA
// base, compute dtype = dtype). --all: seq 256 and 512 x batch 1 and 4 x fp32 and bf16 x
// checkpointing off and on, plus NF4 (bf16) at seq 256/512 x batch 1/4. Default: the quick subset
// bfloat16:256:1, float32:256:1.
//
// One JSON line per case and implementation: tokens_per_s, s_per_step (median of the timed steps;
// runs_s has them all), peak_rss_mb (VmHWM of the steps, reset after loading), gflop_per_step and
// gflops by bench/flops.ts's formula (`flops_formula` in the line), and pct_of_peak: gflops as a
// share of the 2048^3 matmul peak of the compute dtype measured in the same process before
// loading (`matmul_peak_gflops`). After the timed steps one more step runs under libtorch's
// profiler (not timed; --no-linear-profile skips it): linear_ms is the time its aten::mm/addmm
// calls took (bench/linear-time.ts), linear_gflops the linear layers' FLOPs (flops.ts linearGflop)
// over that time and linear_pct_of_peak its share of the matmul peak. HF lines have no linear_*.
// Labels = ids (every position but the first is a loss token), LoRA r16 on all seven projections, lr 2e-4, clipping 1.0.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LoraAdapter } from '../lib/lora/lora-adapter.js';
import { Model, torchInfo } from '../lib/model/model.js';
import { Trainer } from '../lib/train/trainer.js';
import { knobs, median, num, parseArgs, procStatusMb, resetPeakRss, round, runChild, tokenIds } from './common.js';
import { FLOPS_FORMULA, linearGflop, loadAverage, matmulPeaks, stepGflop, type ShapeConfig } from './flops.js';
import { linearTime } from './linear-time.js';
import { defaultModelDir, makeModel } from './make-model.js';

interface Case {
  model: string;
  dtype: 'float32' | 'bfloat16';
  quant: 'none' | 'nf4';
  seq: number;
  batch: number;
  ckpt: boolean;
  paddingFree: boolean;
  rank: number;
  alpha: number;
  runs: number;
  warmup: number;
  threads: number;
  linearProfile: boolean;  // one more, profiled step after the timed ones: the linear layers' share
}

const DTYPE: Record<string, Case['dtype']> = { bf16: 'bfloat16', bfloat16: 'bfloat16', fp32: 'float32', float32: 'float32' };

function parseCase(spec: string): Pick<Case, 'dtype' | 'seq' | 'batch' | 'ckpt' | 'quant'> {
  const [d, seq, batch, ...flags] = spec.split(':');
  if (!DTYPE[d] || !(Number(seq) > 1) || !(Number(batch) >= 1)) throw new Error(`bad case '${spec}': dtype:seq:batch[:ckpt][:nf4]`);
  for (const f of flags) if (f !== 'ckpt' && f !== 'nf4') throw new Error(`bad flag '${f}' in case '${spec}'`);
  return { dtype: DTYPE[d], seq: Number(seq), batch: Number(batch), ckpt: flags.includes('ckpt'), quant: flags.includes('nf4') ? 'nf4' : 'none' };
}

function allCases(): string[] {
  const out: string[] = [];
  for (const d of ['bfloat16', 'float32'])
    for (const seq of [256, 512])
      for (const b of [1, 4])
        for (const ck of ['', ':ckpt']) out.push(`${d}:${seq}:${b}${ck}`);
  for (const seq of [256, 512]) for (const b of [1, 4]) out.push(`bfloat16:${seq}:${b}:nf4`);
  return out;
}

function enrich(line: Record<string, unknown>, c: Case, config: ShapeConfig): Record<string, unknown> {
  const lengths = Array.from({ length: c.batch }, () => c.seq);
  const gflop = stepGflop(config, lengths, c.batch * (c.seq - 1), c.rank);
  const s = line.s_per_step as number;
  const peaks = line.matmul_peak_gflops as Record<string, number>;
  const gflops = gflop / s;
  // The linear layers alone, in the profiled step (profiler overhead included, so a lower bound).
  const linearMs = line.linear_ms as number | undefined;
  const linGflop = linearGflop(config, lengths, c.batch * (c.seq - 1), c.rank);
  const linear = linearMs
    ? { linear_gflop_per_step: round(linGflop, 2), linear_gflops: round(linGflop / (linearMs / 1000)), linear_pct_of_peak: round((100 * linGflop) / (linearMs / 1000) / peaks[c.dtype]) }
    : {};
  return {
    ...line,
    ...linear,
    gflop_per_step: round(gflop, 2),
    gflops: round(gflops),
    pct_of_peak: round((100 * gflops) / peaks[c.dtype]),
    flops_formula: FLOPS_FORMULA,
    loadavg: loadAverage(),
  };
}

async function child(c: Case): Promise<void> {
  const peaks = await matmulPeaks();
  const model = await Model.load(c.model, { dtype: c.dtype, threads: c.threads, quantize: c.quant === 'nf4' ? 'nf4' : undefined });
  const loadPeak = procStatusMb('VmHWM');
  const adapter = await LoraAdapter.create(model, { rank: c.rank, alpha: c.alpha, targetModules: 'all-linear', seed: 1 });
  const ids = tokenIds(c.batch, c.seq, model.config.vocabSize);
  const trainData = ids.map((r) => ({ inputIds: Int32Array.from(r), labels: Int32Array.from(r) }));
  const steps = c.warmup + c.runs;
  const trace = join(tmpdir(), `lorafit-bench-train-${process.pid}.trace.json`);
  if (c.linearProfile) {
    // Read by the native step (TrainState::step) at each step: the extra last step is recorded.
    process.env.LORAFIT_PROFILE_STEP = String(steps + 1);
    process.env.LORAFIT_PROFILE_FILE = trace;
  }
  const trainer = new Trainer({
    model, adapter, trainData, batchSize: c.batch, maxSteps: steps + (c.linearProfile ? 1 : 0), learningRate: 2e-4, maxGradNorm: 1.0, shuffle: false,
    gradientCheckpointing: c.ckpt, paddingFree: c.paddingFree,
  });
  const stamps: number[] = [];
  const losses: number[] = [];
  // The timed steps' page faults and CPU times (the kernel's share: faulting in fresh pages):
  // from the end of the warm-up (or the start of fit) to the end of the last timed step.
  let u0 = process.resourceUsage(), u1 = u0;
  trainer.on('step', (s) => {
    stamps.push(performance.now());
    losses.push(s.loss);
    if (stamps.length === c.warmup) u0 = process.resourceUsage();
    if (stamps.length === steps) u1 = process.resourceUsage();
  });
  const reset = resetPeakRss();
  const t0 = performance.now();
  await trainer.fit();
  const times = stamps.map((t, i) => (t - (i === 0 ? t0 : stamps[i - 1])) / 1000).slice(c.warmup, steps);
  const s = median(times);
  const info = torchInfo();
  let linear: Record<string, number> = {};
  if (c.linearProfile) {
    const t = linearTime(trace);
    rmSync(trace, { force: true });
    linear = { linear_ms: round(t.linearMs, 1), linear_calls: t.linearCalls, profiled_step_ms: round(t.traceSpanMs, 1) };
  }
  const per = (f: (u: NodeJS.ResourceUsage) => number, scale: number) => round((f(u1) - f(u0)) / c.runs / scale, 3);
  const kernel = {
    minor_faults_per_step: per((u) => u.minorPageFault, 1), user_s_per_step: per((u) => u.userCPUTime, 1e6), sys_s_per_step: per((u) => u.systemCPUTime, 1e6),
  };
  const line = {
    bench: 'train', impl: 'lorafit', dtype: c.dtype, quant: c.quant, seq: c.seq, batch: c.batch, ckpt: c.ckpt, padding_free: c.paddingFree,
    layers: model.config.numHiddenLayers, rank: c.rank, lora_modules: adapter.modules.length,
    tokens_per_s: round((c.batch * c.seq) / s), s_per_step: round(s, 3), runs_s: times.map((t) => round(t, 3)), loss: round(losses[losses.length - 1], 4),
    peak_rss_mb: procStatusMb('VmHWM'), load_peak_rss_mb: loadPeak, run_peak_is_after_load: reset, matmul_peak_gflops: peaks,
    threads: info.threads, torch: info.version, env: knobs(), ...kernel, ...linear,
  };
  console.log(JSON.stringify(enrich(line, c, model.config)));
  await model.dispose();
}

async function hfCase(c: Case, config: ShapeConfig): Promise<string> {
  const py = process.env.LORAFIT_PYTHON ?? '/root/.cache/lorafit/venv/bin/python';
  const script = fileURLToPath(new URL('../../bench/hf-baseline.py', import.meta.url));
  try {
    const { stdout } = await promisify(execFile)(py, [script, 'train', '--child', JSON.stringify(c)], { maxBuffer: 16 << 20 });
    const line = stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error('no JSON line');
    return JSON.stringify(enrich(JSON.parse(line) as Record<string, unknown>, c, config));
  } catch (e) {
    return JSON.stringify({ bench: 'train', impl: 'hf', ...c, error: String((e as Error).message).split('\n').slice(-3).join(' ') });
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (typeof a.child === 'string') return child(JSON.parse(a.child) as Case);
  const layers = num(a, 'layers', 24);
  const model = typeof a.model === 'string' ? a.model : makeModel({ out: defaultModelDir(layers), layers });
  const specs = a.all ? allCases() : typeof a.cases === 'string' ? a.cases.split(',') : ['bfloat16:256:1', 'float32:256:1'];
  const { readFileSync } = await import('node:fs');
  const raw = JSON.parse(readFileSync(`${model}/config.json`, 'utf8')) as Record<string, number>;
  const config: ShapeConfig = {
    hiddenSize: raw.hidden_size, intermediateSize: raw.intermediate_size, numHiddenLayers: raw.num_hidden_layers,
    numAttentionHeads: raw.num_attention_heads, numKeyValueHeads: raw.num_key_value_heads ?? raw.num_attention_heads,
    headDim: raw.head_dim ?? raw.hidden_size / raw.num_attention_heads, vocabSize: raw.vocab_size,
  };
  for (const spec of specs) {
    const kase: Case = {
      model, ...parseCase(spec), paddingFree: !a.padded, rank: num(a, 'rank', 16), alpha: num(a, 'alpha', 32),
      runs: num(a, 'runs', 3), warmup: num(a, 'warmup', 1), threads: num(a, 'threads', 2), linearProfile: !a['no-linear-profile'],
    };
    for (const line of await runChild(fileURLToPath(import.meta.url), kase as unknown as Record<string, unknown>)) console.log(line);
    if (a.hf) console.log(await hfCase(kase, config));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
