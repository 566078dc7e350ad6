// lorafit-run.json, the record `lorafit train` keeps for the dashboard: running while it trains,
// then interrupted on Ctrl-C (SIGINT); a record left "running" by a process that died is shown as
// interrupted, with the pid that vanished.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarizeRun } from '../../lib/ui/runs.js';
import { CLI, ensureBuilt, ROOT, tempDir } from '../cli/helpers.js';
import { jsonl, stepRow, until, writeRun } from './helpers.js';

const work = tempDir('lorafit-ui-record-');
beforeAll(() => ensureBuilt());
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('lorafit-run.json', () => {
  it('says running during training and interrupted after Ctrl-C, with the config and the absolute base model', async () => {
    const out = join(work, 'run');
    const child = spawn(process.execPath, [CLI, 'train', '--model', 'models/lorafit-tiny', '--dataset', 'examples/data/styles/yoda.txt', '--limit', '40', '--max-seq-length', '48', '--max-steps', '5000', '--output-dir', out, '--token-cache-dir', join(work, 'cache')], { cwd: ROOT, env: { ...process.env, OMP_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const record = () => JSON.parse(readFileSync(join(out, 'lorafit-run.json'), 'utf8'));
    await until(() => existsSync(join(out, 'metrics.jsonl')) && /training 3\//.test(log), 60_000, `three training steps:\n${log}`);
    expect(record()).toMatchObject({ version: 1, status: 'running', pid: child.pid, config: { model: join(ROOT, 'models', 'lorafit-tiny'), maxSteps: 5000, outputDir: out } });
    expect(summarizeRun({ id: 'run', dir: out }).status).toBe('running');
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('close', r));
    expect(code).toBe(1);
    const r = record();
    expect(r.status).toBe('interrupted');
    expect(r.error).toMatch(/^E_ABORTED: training aborted at step \d+/);
    expect(Date.parse(r.endedAt)).toBeGreaterThanOrEqual(Date.parse(r.startedAt));
    const s = summarizeRun({ id: 'run', dir: out });
    expect(s.status).toBe('interrupted');
    expect(s.problems.join('\n')).toContain('training failed: E_ABORTED: training aborted');
    expect(s.checkpoints.length).toBe(1); // the checkpoint written on abort
  });

  it('a record left "running" by a process that is gone reads as interrupted', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    const dir = writeRun(work, 'killed', jsonl([stepRow(1, 10, 2), stepRow(2, 10, 1.9)]));
    writeFileSync(join(dir, 'lorafit-run.json'), JSON.stringify({ version: 1, status: 'running', pid, startedAt: new Date().toISOString(), config: { model: 'm' } }));
    const s = summarizeRun({ id: 'killed', dir });
    expect(s.status).toBe('interrupted');
    expect(s.problems).toEqual([`the training process (pid ${pid}) ended without finishing the run`]);
    expect(s).toMatchObject({ step: 2, totalSteps: 10, model: 'm' });
  });
});
