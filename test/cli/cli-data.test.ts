// The CLI's data handling as a user meets it: the dataset is checked before the model loads (a
// bad row beats even a missing model), --skip-invalid prints each skipped row's file:line and the
// count, the tokenization cache is hit on a second run with the same examples, and the model's
// warnings (an unused checkpoint tensor) reach stderr and the log.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromFloat32, readSafetensors, writeSafetensors } from '../../lib/util/safetensors.js';
import { LLAMA_ADAPTER, ROOT, byteLevelLlama, ensureBuilt, runCli, tempDir } from './helpers.js';

const YODA = join(ROOT, 'test', 'fixtures', 'data', 'styles', 'yoda.txt');

describe('lorafit CLI: data before the model, --skip-invalid, the tokenization cache, model warnings', () => {
  let work: string;
  let model: string;
  let lines: string[];
  let good: string;
  let bad: string;

  beforeAll(() => {
    ensureBuilt();
    work = tempDir();
    model = byteLevelLlama();
    lines = readFileSync(YODA, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 12);
    good = join(work, 'good.jsonl');
    writeFileSync(good, lines.map((l) => `${JSON.stringify({ text: l })}\n`).join(''));
    // 12 good rows and 3 bad ones: malformed JSON (line 4), not an object (line 8), no text column (line 12).
    const rows = lines.map((l) => JSON.stringify({ text: l }));
    rows.splice(3, 0, '{"text": "unterminated');
    rows.splice(7, 0, '["an", "array"]');
    rows.splice(11, 0, JSON.stringify({ txt: 'wrong column' }));
    bad = join(work, 'bad.jsonl');
    writeFileSync(bad, `${rows.join('\n')}\n`);
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('train and eval report a bad dataset row (file:line) before loading the model, even a missing one', async () => {
    const missing = join(work, 'no-such-model');
    const t = await runCli(['train', '--model', missing, '--dataset', bad, '--output-dir', join(work, 'x')]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(new RegExp(`^error \\[E_DATA_PARSE\\]: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4: malformed JSON line`));
    expect(t.stdout).not.toContain('loading');
    // With a real model too: the data error comes first, the model is never loaded.
    const t2 = await runCli(['train', '--model', model, '--dataset', bad, '--output-dir', join(work, 'x')]);
    expect(t2.code).toBe(1);
    expect(t2.stderr).toContain(`error [E_DATA_PARSE]: ${bad}:4: malformed JSON line`);
    expect(t2.stdout).not.toMatch(/^model: /m);
    const e = await runCli(['eval', '--model', missing, '--dataset', bad]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain(`error [E_DATA_PARSE]: ${bad}:4: malformed JSON line`);
    // A missing model with good data is still the model's error (the order, not the check, changed).
    const m = await runCli(['eval', '--model', missing, '--dataset', good]);
    expect(m.code).toBe(1);
    expect(m.stderr).not.toContain('E_DATA');
  }, 120_000);

  it('train --skip-invalid prints each skipped row (file:line) and the count; the second run reads the tokenization cache', async () => {
    const cacheDir = join(work, 'token-cache');
    const args = ['train', '--model', model, '--dataset', bad, '--skip-invalid', '--max-steps', '1', '--batch-size', '2', '--max-seq-length', '64', '--eval-split', '3', '--lora-rank', '2', '--token-cache-dir', cacheDir];
    const log = join(work, 'skip.log.jsonl');
    const r = await runCli([...args, '--output-dir', join(work, 'skip1'), '--log-file', log], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`^warning: skipped invalid row: .*bad\\.jsonl:4: malformed JSON line`)),
      `warning: skipped invalid row: ${bad}:8: expected a JSON object per record, got an array`,
      expect.stringMatching(new RegExp(`^warning: skipped invalid row: .*bad\\.jsonl:12, key "text": missing column "text"`)),
      `warning: skipped 3 invalid row(s) of ${bad} (first: ${bad}:4)`,
    ]);
    expect(r.stdout).toMatch(/dataset: 12 records from .*bad\.jsonl; 9 train, 3 eval/);
    expect(r.stdout).toMatch(/tokenizing: 12 records, cached in .*token-cache/);
    const logged = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(logged.filter((l) => l.level === 40 && /skipped invalid row/.test(l.msg)).map((l) => l.line)).toEqual([4, 8, 12]);
    const nll = (out: string) => /held-out NLL before training: ([\d.]+)/.exec(out)?.[1];
    expect(nll(r.stdout)).toBeDefined();

    const hit = await runCli([...args, '--output-dir', join(work, 'skip2')], { timeoutMs: 120_000 });
    expect(hit.code, hit.stderr).toBe(0);
    expect(hit.stdout).toMatch(/tokenizing: 12 records, read from the tokenization cache .*token-cache/);
    expect(nll(hit.stdout)).toBe(nll(r.stdout)); // the same held-out examples
    expect(hit.stdout.match(/^(train|eval): .*$/gm)).toEqual(r.stdout.match(/^(train|eval): .*$/gm));

    const off = await runCli([...args, '--output-dir', join(work, 'skip3'), '--no-token-cache'], { timeoutMs: 120_000 });
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toContain('tokenizing: 12 records, tokenization cache off');
    expect(nll(off.stdout)).toBe(nll(r.stdout));

    // Without the flag the first bad row stops the run.
    const strict = await runCli(['train', '--model', model, '--dataset', bad, '--output-dir', join(work, 'skip4')]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain(`${bad}:4: malformed JSON line`);
  }, 400_000);

  it('eval --skip-invalid skips and counts the same rows', async () => {
    const r = await runCli(['eval', '--model', model, '--dataset', bad, '--skip-invalid', '--max-answers', '0'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: skipped 3 invalid row(s) of ${bad} (first: ${bad}:4)`);
    expect(r.stdout).toMatch(/^12 records, /m);
  }, 120_000);

  it('a model with an unused checkpoint tensor: the CLI prints the warning to stderr and logs it at warn', async () => {
    const dir = byteLevelLlama();
    const file = join(dir, 'model.safetensors');
    const st = readSafetensors(file);
    const tensors = new Map(st.tensors);
    tensors.set('model.layers.0.mlp.extra_proj.weight', fromFloat32(new Float32Array(8).fill(0.5), [2, 4]));
    await writeSafetensors(file, tensors, { format: 'pt' });
    const want = 'warning: unused weight in checkpoint: model.layers.0.mlp.extra_proj.weight';
    const log = join(work, 'gen.log.jsonl');
    const g = await runCli(['generate', '--model', dir, '--prompt', 'Strong, ', '--max-new-tokens', '2', '--log-file', log]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr.split('\n')).toContain(want);
    const logged = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(logged.some((l) => l.level === 40 && l.msg === 'unused weight in checkpoint: model.layers.0.mlp.extra_proj.weight')).toBe(true);
    // merge loads the base itself: the same warning.
    const m = await runCli(['merge', '--model', dir, '--adapter', LLAMA_ADAPTER, '--out', join(work, 'merged')]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stderr.split('\n')).toContain(want);
    // The clean fixture prints none.
    const clean = await runCli(['generate', '--model', model, '--prompt', 'Strong, ', '--max-new-tokens', '2']);
    expect(clean.stderr).not.toContain('warning:');
  }, 180_000);
});
