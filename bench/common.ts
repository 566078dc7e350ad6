// Shared pieces of the benchmarks: arguments, child processes (one per case, so peak RSS is per
// case), peak-RSS probes, token ids (the same formula as bench/hf-baseline.py), medians.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export type Args = Record<string, string | boolean>;

export function parseArgs(argv: string[]): Args {
  const r: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const k = a.slice(2);
    if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) r[k] = argv[++i];
    else r[k] = true;
  }
  return r;
}

export function num(a: Args, k: string, dflt: number): number {
  const v = a[k];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${k} must be a number`);
  return n;
}

export function list(a: Args, k: string, dflt: string[]): string[] {
  const v = a[k];
  return typeof v === 'string' ? v.split(',').filter(Boolean) : dflt;
}

/** kB field of /proc/self/status, in MiB (VmHWM: peak resident set, VmRSS: current). */
export function procStatusMb(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/** Resets VmHWM to the current RSS (Linux >= 4.0), so the next reading is the peak of what follows. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Token ids of row-major [batch, seq], same as hf-baseline.py's ids(): (i * 7919 + 17) mod vocab. */
export function tokenIds(batch: number, seq: number, vocab: number): number[][] {
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const row: number[] = [];
    for (let t = 0; t < seq; t++) row.push(((b * seq + t) * 7919 + 17) % vocab);
    rows.push(row);
  }
  return rows;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** Environment knobs that change the timings; recorded in every JSON line. */
export function knobs(): Record<string, string> {
  const r: Record<string, string> = {};
  for (const k of ['GLIBC_TUNABLES', 'OMP_WAIT_POLICY', 'OMP_NUM_THREADS', 'LD_PRELOAD', 'MALLOC_ARENA_MAX', 'LORAFIT_ADDON', 'LORAFIT_MALLOC_TRIM', 'GOMP_SPINCOUNT', 'LORAFIT_SEGMENT_ATTENTION', 'LORAFIT_BLOCKED_ATTENTION', 'LORAFIT_LORA_KERNELS', 'LORAFIT_SWIGLU_KERNEL', 'LORAFIT_ADAMW_KERNEL', 'LORAFIT_ONEDNN_FP32', 'LORAFIT_CE_KERNEL']) if (process.env[k]) r[k] = process.env[k]!;
  return r;
}

/** Times `fn` `runs` times after `warmup` untimed calls; milliseconds of each timed run. */
export async function timeRuns(fn: () => Promise<unknown>, runs: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Runs this script again as a child for one case (`--child <json>`) and returns its JSON lines
 * (non-JSON stdout and all stderr pass through to our stderr). A failing case yields an error line.
 */
export function runChild(script: string, kase: Record<string, unknown>, extraEnv: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, '--child', JSON.stringify(kase)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...extraEnv },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code, signal) => {
      const lines = out.split('\n').filter((l) => l.startsWith('{'));
      for (const l of out.split('\n')) if (l && !l.startsWith('{')) process.stderr.write(l + '\n');
      if (code !== 0) lines.push(JSON.stringify({ ...kase, error: `child exited with ${signal ?? code}` }));
      resolve(lines);
    });
  });
}
