// Every example runs end to end in its short mode on the embedded default model, as a user runs
// it (compiled, in a child process), and its metric moves the right way.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'lorafit-examples-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function example(name: string, extra: string[] = []): Promise<Record<string, any>> {
  const dir = join(out, name);
  await run(process.execPath, [join(root, 'dist', 'examples', name, 'run.js'), '--short', '--out', dir, ...extra], { cwd: root, maxBuffer: 32 << 20 });
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
}

describe('examples (short mode, embedded default model)', () => {
  it('style-transfer: the tuned model finds held-out Yoda lines more likely', async () => {
    const s = await example('style-transfer');
    expect(s.heldOutNll.tuned).toBeLessThan(s.heldOutNll.base - 0.2);
    expect(s.tunedAnswers.length).toBe(s.prompts.length);
    expect(existsSync(join(out, 'style-transfer', 'adapter', 'adapter_model.safetensors'))).toBe(true);
  }, 600_000);

  it('poetry: eval loss falls from base to early to late, and the A/B file is written', async () => {
    const s = await example('poetry');
    expect(s.evalLoss.late).toBeLessThan(s.evalLoss.base);
    expect(s.evalLoss.late).toBeLessThanOrEqual(s.evalLoss.early + 0.05);
    expect(readFileSync(s.abFile, 'utf8').trim().split('\n').length).toBe(3);
    expect(existsSync(join(out, 'poetry', 'run', 'loss-curve.svg'))).toBe(true);
  }, 600_000);

  it('domain-qa: token F1 on held-out questions rises', async () => {
    const s = await example('domain-qa');
    expect(s.f1.tuned).toBeGreaterThan(s.f1.base);
  }, 600_000);

  it('writing-style: held-out perplexity falls after tuning on the Markdown posts', async () => {
    const s = await example('writing-style');
    expect(s.corpus.records.train).toBeGreaterThan(0);
    expect(s.perplexity.tuned).toBeLessThan(s.perplexity.base);
    expect(existsSync(s.abFile)).toBe(true);
  }, 600_000);

  it('adapters: two adapters on one model answer differently; merged model and GGUF files are written', async () => {
    const s = await example('adapters');
    expect(s.outputs.yoda).not.toBe(s.outputs.leprechaun);
    expect(s.exists).toEqual([true, true, true]);
  }, 600_000);
});
