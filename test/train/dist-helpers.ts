// Child processes for the data-parallel tests: one per rank, with torchrun's environment set by
// hand (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), loopback, 1 thread each.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../../lib/util/free-port.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, HF } from '../helpers/golden.js';

export const CHILD = fileURLToPath(new URL('./child-dist-train.mjs', import.meta.url));
export const MODEL = join(HF, 'llama', 'model');
export const DATA = join(FIXTURES, 'data', 'styles', 'yoda.txt');

export interface RankOptions {
  modelDir?: string;
  dataFile?: string;
  trainCount: number;
  evalCount?: number;
  maxSteps: number;
  batchSize: number;
  accumulation?: number;
  outputDir?: string;
  saveSteps?: number;
  learningRate?: number;
  /** Abort (this rank's signal) after this step. */
  abortAtStep?: number;
  resumeFrom?: string;
  distributed?: boolean | Record<string, unknown>;
  result: string;
}

export interface RankResult {
  rank: number;
  worldSize: number;
  losses: { step: number; loss: number; tokens: number; reduceMs?: number }[];
  evalLoss?: number;
  tensors: Record<string, number[]>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function torchrunEnv(rank: number, worldSize: number, port: number): Record<string, string> {
  return { RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(worldSize), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), LORAFIT_DIST_TIMEOUT: '30' };
}

export function startRank(options: RankOptions, env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit> } {
  const t0 = Date.now();
  const opts = { modelDir: MODEL, dataFile: DATA, ...options };
  const child = spawn(process.execPath, [CHILD, JSON.stringify(opts)], { env: { ...process.env, OMP_NUM_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  return { child, exit };
}

/** Runs `worldSize` ranks with the torchrun environment; rejects unless all exit 0. */
export async function runRanks(worldSize: number, options: RankOptions): Promise<RankResult[]> {
  const port = await freePort();
  const runs = Array.from({ length: worldSize }, (_, r) => startRank({ ...options, distributed: options.distributed ?? true }, torchrunEnv(r, worldSize, port)));
  const exits = await Promise.all(runs.map((r) => r.exit));
  exits.forEach((e, r) => {
    if (e.code !== 0) throw new Error(`rank ${r} exited with ${e.code ?? e.signal}:\n${e.stderr}`);
  });
  return exits.map((_, r) => readResult(options.result, r));
}

/** One process, no process group. */
export async function runSingle(options: RankOptions): Promise<RankResult> {
  const e = await startRank(options).exit;
  if (e.code !== 0) throw new Error(`the single process exited with ${e.code ?? e.signal}:\n${e.stderr}`);
  return readResult(options.result, 0);
}

export function readResult(prefix: string, rank: number): RankResult {
  return JSON.parse(readFileSync(`${prefix}.${rank}.json`, 'utf8')) as RankResult;
}

export function maxTensorDiff(a: Record<string, number[]>, b: Record<string, number[]>): number {
  const keys = Object.keys(a).sort();
  if (keys.join() !== Object.keys(b).sort().join()) throw new Error('the adapters hold different tensors');
  let m = 0;
  for (const k of keys) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

export { freePort };
