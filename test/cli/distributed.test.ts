// `lorafit train --nproc-per-node 2` and the same command under torchrun (the venv's, --no-python)
// train what one process trains at twice the batch; rank 0 alone prints and writes.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { python } from '../helpers/python.js';
import { freePort } from '../train/dist-helpers.js';
import { CLI, ROOT, byteLevelLlama, ensureBuilt, runCli, tempDir } from './helpers.js';

const YODA = join(ROOT, 'test', 'fixtures', 'data', 'styles', 'yoda.txt');

function adapterTensors(out: string): Map<string, Float32Array> {
  const st = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
  return new Map([...st.tensors].map(([k, t]) => [k, toFloat32(t)]));
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let m = 0;
  for (const [k, v] of a) for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - b.get(k)![i]));
  return m;
}

describe('lorafit train, data-parallel', () => {
  let work: string;
  let args: (out: string, batch: number) => string[];
  let single: Map<string, Float32Array>;

  beforeAll(async () => {
    ensureBuilt();
    work = tempDir();
    const model = byteLevelLlama();
    const data = join(work, 'yoda.txt');
    writeFileSync(data, `${readFileSync(YODA, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 14).join('\n')}\n`);
    args = (out, batch) => ['train', '--model', model, '--dataset', data, '--max-steps', '3', '--output-dir', out, '--lora-rank', '4', '--target-modules', 'q_proj,v_proj',
      '--learning-rate', '0.001', '--batch-size', String(batch), '--max-seq-length', '48', '--eval-split', '4', '--threads', '1'];
    const r = await runCli(args(join(work, 'single'), 4), { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    single = adapterTensors(join(work, 'single'));
  }, 180_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('--nproc-per-node 2 at batch 2 trains the adapter of 1 process at batch 4; rank 0 alone reports and writes', async () => {
    const out = join(work, 'nproc');
    const r = await runCli([...args(out, 2), '--nproc-per-node', '2'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/starting 2 ranks on this machine/);
    expect(r.stdout.match(/trained 3 steps/g)).toHaveLength(1);
    expect(r.stdout.match(/adapter saved to/g)).toHaveLength(1);
    expect(maxDiff(adapterTensors(out), single)).toBeLessThan(1e-5);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').filter((l) => JSON.parse(l).type === 'step');
    expect(steps).toHaveLength(3);
  }, 180_000);

  it('the same command under torchrun --no-python', async () => {
    const out = join(work, 'torchrun');
    const torchrun = join(dirname(python()), 'torchrun');
    const port = await freePort();
    const { stdout } = await promisify(execFile)(torchrun, ['--nproc-per-node', '2', '--master-addr', '127.0.0.1', '--master-port', String(port), '--no-python', process.execPath, CLI, ...args(out, 2)], {
      env: { ...process.env, OMP_NUM_THREADS: '1', FORCE_COLOR: '0' },
      timeout: 150_000,
    });
    expect(stdout).toMatch(/trained 3 steps/);
    expect(maxDiff(adapterTensors(out), single)).toBeLessThan(1e-5);
  }, 180_000);

  it('a rank that fails stops the launch with an error naming it', async () => {
    const r = await runCli([...args(join(work, 'nccl'), 2), '--nproc-per-node', '2', '--dist-backend', 'nccl'], { timeoutMs: 120_000 });
    expect(r.code).not.toBe(0);
    // Without the NCCL plugin: not built; with it (LORAFIT_NCCL=1) on a machine without a GPU: no CUDA.
    expect(r.stderr).toMatch(/backend 'nccl' is not built into this lorafit addon|NCCL could not start on cuda:0/);
    expect(r.stderr).toMatch(/error \[E_DISTRIBUTED\]: rank [01] of 2 exited with code 1/);
  }, 180_000);
});
