// Checkpoints: outputDir/checkpoint-<step>/ with the adapter (PEFT files in adapter/; the whole
// model as an HF folder in model/ for full-parameter training), the optimizer state
// (optimizer.safetensors) and trainer_state.json (step, data position, best metric, history,
// options). Written into a temporary folder and renamed, so a checkpoint folder is either
// complete or absent, even if the process is killed mid-write.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';
import { writeDirAtomic, writeFileAtomicSync } from '../util/fs-atomic.js';
import { fromFloat32, readSafetensors, serializeSafetensors, toFloat32, type StTensor } from '../util/safetensors.js';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainerState {
  globalStep: number;
  epoch: number;
  stepInEpoch: number;
  bestEvalLoss: number | null;
  bestCheckpoint: string | null;
  evalsWithoutImprovement: number;
  history: Record<string, unknown>[];
  options: Record<string, unknown>;
  adapterName: string;
  /** Ranks of the run that wrote it (absent: 1) and its examples per optimizer step (resume needs the same). */
  worldSize?: number;
  globalBatchSize?: number;
}

export interface NamedArray {
  key: string;
  shape: number[];
  data: Float32Array;
}

export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

export async function writeCheckpoint(
  outputDir: string,
  state: TrainerState,
  writeWeights: (checkpointDir: string) => Promise<void>,
  optimizer: { step: number; entries: NamedArray[] },
): Promise<string> {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, checkpointName(state.globalStep));
  const tmp = join(outputDir, `.${checkpointName(state.globalStep)}.tmp-${process.pid}`);
  await writeDirAtomic(
    final,
    async (dir) => {
      await writeWeights(dir);
      const tensors = new Map<string, StTensor>(optimizer.entries.map((e) => [e.key, fromFloat32(e.data, e.shape)]));
      writeFileAtomicSync(join(dir, OPTIMIZER_FILE), serializeSafetensors(tensors, { step: String(optimizer.step) }));
      writeFileAtomicSync(join(dir, TRAINER_STATE), `${JSON.stringify(state, null, 2)}\n`);
    },
    { tmp },
  );
  return final;
}

export function readCheckpoint(dir: string): { state: TrainerState; optimizer: { step: number; entries: NamedArray[] }; adapterDir: string; modelDir: string } {
  const stateFile = join(dir, TRAINER_STATE);
  if (!existsSync(stateFile)) throw new LorafitError('E_CHECKPOINT', `${dir}: not a lorafit checkpoint (no ${TRAINER_STATE})`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as TrainerState;
  } catch (e) {
    throw new LorafitError('E_CHECKPOINT', `${stateFile}: not valid JSON (${(e as Error).message})`);
  }
  const st = readSafetensors(join(dir, OPTIMIZER_FILE));
  const entries = [...st.tensors].map(([key, t]) => ({ key, shape: t.shape, data: toFloat32(t) }));
  return { state, optimizer: { step: Number(st.metadata.step ?? 0), entries }, adapterDir: join(dir, 'adapter'), modelDir: join(dir, 'model') };
}

/** Complete checkpoints in outputDir, oldest first. */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(outputDir, m[0], TRAINER_STATE)))
    .map((m) => ({ step: Number(m[1]), dir: join(outputDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(outputDir: string): string | undefined {
  return listCheckpoints(outputDir).at(-1)?.dir;
}

/** Deletes the oldest checkpoints beyond `limit`, never the best one. */
export function pruneCheckpoints(outputDir: string, limit: number, keep: string | null): void {
  const all = listCheckpoints(outputDir);
  let excess = all.length - limit;
  for (const c of all) {
    if (excess <= 0) break;
    if (c.dir === keep) continue;
    rmSync(c.dir, { recursive: true, force: true });
    excess--;
  }
}
