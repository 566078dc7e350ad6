// A training process killed (SIGKILL) while it writes checkpoints leaves only complete
// checkpoint folders, and a new process resumes from the last one.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { latestCheckpoint, readCheckpoint } from '../../lib/train/checkpoint.js';
import { readSafetensors } from '../../lib/util/safetensors.js';
import { FIXTURES, HF } from '../helpers/golden.js';

const child = fileURLToPath(new URL('./child-train.mjs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'lorafit-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const args = (out: string, resume?: string) => [child, join(HF, 'llama', 'model'), out, join(FIXTURES, 'data', 'styles', 'yoda.txt'), ...(resume ? [resume] : [])];

it('survives SIGKILL in the middle of checkpointing and resumes from the last complete checkpoint', async () => {
  const out = join(root, 'run');
  // Kill once the child has written a few checkpoints: it writes one every step, so the kill
  // lands during (or between) checkpoint writes.
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, args(out), { stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = 0;
    p.stdout.on('data', (chunk: Buffer) => {
      seen += (chunk.toString().match(/checkpoint /g) ?? []).length;
      if (seen >= 5) p.kill('SIGKILL');
    });
    p.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited without being killed (${signal})`))));
  });
  // Every checkpoint-N folder is complete; temporary folders may remain and are ignored.
  const folders = readdirSync(out).filter((d) => d.startsWith('checkpoint-'));
  expect(folders.length).toBeGreaterThanOrEqual(5);
  for (const d of folders) {
    const ck = readCheckpoint(join(out, d));
    expect(ck.state.globalStep).toBe(Number(d.split('-')[1]));
    expect(readSafetensors(join(out, d, 'adapter', 'adapter_model.safetensors')).tensors.size).toBeGreaterThan(0);
  }
  const latest = latestCheckpoint(out)!;
  const step = readCheckpoint(latest).state.globalStep;
  // A new process resumes there: its first checkpoint is the next step.
  const firstStep = await new Promise<number>((resolve) => {
    const p = spawn(process.execPath, args(join(root, 'resumed'), latest), { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    let first = -1;
    p.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /checkpoint (\d+)/.exec(text);
      if (m && first < 0) {
        first = Number(m[1]);
        p.kill('SIGTERM');
      }
    });
    p.on('exit', () => resolve(first));
  });
  expect(firstStep).toBe(step + 1);
}, 120_000);
