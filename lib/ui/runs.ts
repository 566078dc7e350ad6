// Run discovery and run summaries for the dashboard. A run is a training output folder (what
// `lorafit train --output-dir` writes: metrics.jsonl, checkpoint-N/, adapter/, lorafit-run.json).
// The dashboard serves runs named on the command line (--run DIR, any number) or found as the
// direct subfolders of --runs DIR. A request names a run by its id, never by a path: an id maps to
// a folder found here, so nothing outside the run folders can be reached.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { METRICS_FILE, readMetricsFrom, type MetricsRow } from './metrics-file.js';
import { processAlive, readRunRecord, RUN_RECORD } from './run-record.js';

export type RunStatus = 'running' | 'completed' | 'failed' | 'interrupted' | 'stopped' | 'empty' | 'missing' | 'corrupt';

export interface RunRef {
  id: string;
  dir: string;
}

export interface CheckpointInfo {
  name: string;
  step: number;
  /** Holds adapter/adapter_config.json (so the playground can load it). */
  hasAdapter: boolean;
}

export interface RunSummary {
  id: string;
  dir: string;
  status: RunStatus;
  step: number | null;
  totalSteps: number | null;
  loss: number | null;
  learningRate: number | null;
  tokensPerSecond: number | null;
  etaMs: number | null;
  lastEvalLoss: number | null;
  bestEvalLoss: number | null;
  bestEvalStep: number | null;
  checkpoints: CheckpointInfo[];
  /** Adapters the playground can chat with: 'adapter' (the final one) and checkpoint-N. */
  adapters: string[];
  /** The run's config: lorafit-run.json's, else the newest checkpoint's trainer options. */
  config: Record<string, unknown> | null;
  /** The base model (lorafit-run.json's config.model, else the adapter's base_model_name_or_path). */
  model: string | null;
  /** When metrics.jsonl last changed (ISO time). */
  updatedAt: string | null;
  /** What is wrong with the folder, one sentence each (corrupt files, a vanished process, ...). */
  problems: string[];
}

/** Where runs come from: folders given one by one, and/or a parent folder whose subfolders are runs. */
export interface RunSources {
  runs?: string[];
  runsDir?: string;
}

const CHECKPOINT = /^checkpoint-(\d+)$/;

/** Whether a folder looks like a training output folder. */
export function looksLikeRun(dir: string): boolean {
  if (!isDir(dir)) return false;
  if (existsSync(join(dir, METRICS_FILE)) || existsSync(join(dir, RUN_RECORD)) || existsSync(join(dir, 'adapter', 'adapter_config.json'))) return true;
  return safeList(dir).some((n) => CHECKPOINT.test(n));
}

/**
 * The runs to show, with unique ids (a folder's name; `name-2`, ... on a clash). --run folders are
 * listed even when missing (their summary says so); --runs subfolders only when they look like runs.
 */
export function discoverRuns(sources: RunSources): RunRef[] {
  const dirs: string[] = (sources.runs ?? []).map((d) => resolve(d));
  if (sources.runsDir) {
    const parent = resolve(sources.runsDir);
    if (looksLikeRun(parent)) dirs.push(parent);
    for (const name of safeList(parent).sort()) {
      const d = join(parent, name);
      if (!name.startsWith('.') && looksLikeRun(d)) dirs.push(d);
    }
  }
  const out: RunRef[] = [];
  const ids = new Set<string>();
  for (const dir of [...new Set(dirs)]) {
    const base = basename(dir).replace(/[^A-Za-z0-9_.-]/g, '_') || 'run';
    let id = base;
    for (let i = 2; ids.has(id); i++) id = `${base}-${i}`;
    ids.add(id);
    out.push({ id, dir });
  }
  return out;
}

/** A run's state, read from its folder; never throws (what is wrong goes to `problems`). */
export function summarizeRun(ref: RunRef, rows?: MetricsRow[]): RunSummary {
  const s: RunSummary = {
    id: ref.id,
    dir: ref.dir,
    status: 'empty',
    step: null,
    totalSteps: null,
    loss: null,
    learningRate: null,
    tokensPerSecond: null,
    etaMs: null,
    lastEvalLoss: null,
    bestEvalLoss: null,
    bestEvalStep: null,
    checkpoints: [],
    adapters: [],
    config: null,
    model: null,
    updatedAt: null,
    problems: [],
  };
  if (!existsSync(ref.dir)) {
    s.status = 'missing';
    s.problems.push(`the run folder ${ref.dir} does not exist (deleted, or training has not started yet)`);
    return s;
  }
  if (!isDir(ref.dir)) {
    s.status = 'corrupt';
    s.problems.push(`${ref.dir} is not a folder`);
    return s;
  }
  const metricsFile = join(ref.dir, METRICS_FILE);
  if (!rows && existsSync(metricsFile)) {
    try {
      const chunk = readMetricsFrom(metricsFile);
      rows = chunk.rows;
      if (chunk.error) s.problems.push(chunk.error);
      s.updatedAt = statSync(metricsFile).mtime.toISOString();
    } catch (e) {
      s.problems.push(`${METRICS_FILE}: ${(e as Error).message}`);
    }
  } else if (existsSync(metricsFile)) {
    s.updatedAt = safeMtime(metricsFile);
  }
  applyRows(s, rows ?? []);

  for (const name of safeList(ref.dir)) {
    const m = CHECKPOINT.exec(name);
    if (m && isDir(join(ref.dir, name))) s.checkpoints.push({ name, step: Number(m[1]), hasAdapter: existsSync(join(ref.dir, name, 'adapter', 'adapter_config.json')) });
  }
  s.checkpoints.sort((a, b) => a.step - b.step);
  const finalAdapter = existsSync(join(ref.dir, 'adapter', 'adapter_config.json'));
  s.adapters = [...(finalAdapter ? ['adapter'] : []), ...s.checkpoints.filter((c) => c.hasAdapter).map((c) => c.name).reverse()];

  let recorded: ReturnType<typeof readRunRecord>;
  try {
    recorded = readRunRecord(ref.dir);
  } catch (e) {
    s.problems.push((e as Error).message);
  }
  if (recorded) {
    s.config = recorded.config;
    if (recorded.status === 'running' && !processAlive(recorded.pid)) {
      s.status = 'interrupted';
      s.problems.push(`the training process (pid ${recorded.pid}) ended without finishing the run`);
    } else {
      s.status = recorded.status;
    }
    if (recorded.error) s.problems.push(`training failed: ${recorded.error}`);
  } else if (finalAdapter || (s.step !== null && s.step === s.totalSteps)) {
    s.status = 'completed';
  } else if (s.updatedAt && Date.now() - Date.parse(s.updatedAt) < 60_000) {
    s.status = 'running';
  } else if (s.step !== null || s.checkpoints.length) {
    s.status = 'stopped';
  } else if (s.problems.length) {
    s.status = 'corrupt';
  }
  if (!s.config) s.config = checkpointOptions(ref.dir, s.checkpoints, s.problems);
  const model = s.config?.model;
  s.model = typeof model === 'string' ? model : adapterBase(ref.dir, s.adapters[0]);
  return s;
}

function applyRows(s: RunSummary, rows: MetricsRow[]): void {
  for (const r of rows) {
    if (r.type === 'step') {
      s.step = r.step;
      s.totalSteps = num(r.totalSteps) ?? s.totalSteps;
      s.loss = num(r.loss);
      s.learningRate = num(r.learningRate);
      s.tokensPerSecond = num(r.tokensPerSecond);
      s.etaMs = num(r.etaMs);
    } else if (r.type === 'eval') {
      const loss = num(r.evalLoss);
      s.lastEvalLoss = loss;
      if (loss !== null && (s.bestEvalLoss === null || loss < s.bestEvalLoss)) {
        s.bestEvalLoss = loss;
        s.bestEvalStep = r.step;
      }
    }
  }
}

function checkpointOptions(dir: string, checkpoints: CheckpointInfo[], problems: string[]): Record<string, unknown> | null {
  const newest = checkpoints[checkpoints.length - 1];
  if (!newest) return null;
  const file = join(dir, newest.name, 'trainer_state.json');
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as { options?: unknown };
    return state.options && typeof state.options === 'object' ? (state.options as Record<string, unknown>) : null;
  } catch (e) {
    problems.push(`${newest.name}/trainer_state.json: ${(e as Error).message}`);
    return null;
  }
}

function adapterBase(dir: string, adapter: string | undefined): string | null {
  if (!adapter) return null;
  const file = adapter === 'adapter' ? join(dir, 'adapter', 'adapter_config.json') : join(dir, adapter, 'adapter', 'adapter_config.json');
  try {
    const base = (JSON.parse(readFileSync(file, 'utf8')) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
    return typeof base === 'string' && base ? base : null;
  } catch {
    return null;
  }
}

/** The folder of one of a run's adapters ('adapter' or checkpoint-N), or undefined if it has no such adapter. */
export function adapterDir(summary: RunSummary, name: string): string | undefined {
  if (!summary.adapters.includes(name)) return undefined;
  return name === 'adapter' ? join(summary.dir, 'adapter') : join(summary.dir, name, 'adapter');
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function safeMtime(file: string): string | null {
  try {
    return statSync(file).mtime.toISOString();
  } catch {
    return null;
  }
}
