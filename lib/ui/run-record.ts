// <outputDir>/lorafit-run.json: what `lorafit train` records about a run for the dashboard: the
// resolved config (the base model among it, which the playground loads), the process, and the
// status (running, then completed / failed / interrupted). Written atomically at the start and at
// the end, so a reader never sees half of it.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/fs-atomic.js';

export const RUN_RECORD = 'lorafit-run.json';

export type RecordedStatus = 'running' | 'completed' | 'failed' | 'interrupted';

export interface RunRecord {
  version: 1;
  status: RecordedStatus;
  pid: number;
  startedAt: string;
  endedAt?: string;
  /** The error's code and message when status is failed. */
  error?: string;
  config: Record<string, unknown>;
}

export function writeRunRecord(outputDir: string, record: RunRecord): void {
  if (!existsSync(outputDir)) mkdirSync(outputDir, { recursive: true });
  writeFileAtomicSync(join(outputDir, RUN_RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/** The record in `dir` (undefined when there is none); throws a message naming the file when it is not a record. */
export function readRunRecord(dir: string): RunRecord | undefined {
  const file = join(dir, RUN_RECORD);
  if (!existsSync(file)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${RUN_RECORD} is not valid JSON (${(e as Error).message})`);
  }
  const r = value as Partial<RunRecord> | null;
  if (!r || typeof r !== 'object' || typeof r.status !== 'string' || typeof r.config !== 'object' || r.config === null) {
    throw new Error(`${RUN_RECORD} lacks 'status' or 'config'`);
  }
  return r as RunRecord;
}

/** Whether a process with this id is alive (a run whose process died mid-training was interrupted). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
