// Reading metrics.jsonl while it is written: complete lines only, a write cut inside a multi-byte
// character is never decoded, a bad complete line stops the reading with its line number.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetricsFrom } from '../../lib/ui/metrics-file.js';
import { ensureBuilt, runCli } from '../cli/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lorafit-ui-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readMetricsFrom', () => {
  it('holds back a last line cut inside a UTF-8 character, and reads it whole once its newline is there', () => {
    const file = join(dir, 'metrics.jsonl');
    const first = `${JSON.stringify({ type: 'step', step: 1, loss: 2 })}\n`;
    const second = Buffer.from(`${JSON.stringify({ type: 'eval', step: 1, evalLoss: 1.5, note: 'Ω 月' })}\n`);
    const cut = second.indexOf(Buffer.from('月')) + 1; // inside the 3-byte character
    writeFileSync(file, Buffer.concat([Buffer.from(first), second.subarray(0, cut)]));
    const a = readMetricsFrom(file);
    expect(a.rows).toEqual([{ type: 'step', step: 1, loss: 2 }]);
    expect(a.offset).toBe(Buffer.byteLength(first));
    expect(a.lines).toBe(1);
    expect(a.pendingBytes).toBe(cut);
    appendFileSync(file, second.subarray(cut));
    const b = readMetricsFrom(file, a.offset, a.lines);
    expect(b.rows).toEqual([{ type: 'eval', step: 1, evalLoss: 1.5, note: 'Ω 月' }]);
    expect(b.offset).toBe(Buffer.byteLength(first) + second.length);
    expect(b.pendingBytes).toBe(0);
    expect(readMetricsFrom(file, b.offset + 10).truncated).toBe(true);
  });

  it('stops at a bad complete line and names it; rows before it are kept', () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify({ type: 'step', step: 1 })}\n\n[1,2]\n${JSON.stringify({ type: 'step', step: 3 })}\n`);
    const r = readMetricsFrom(file);
    expect(r.rows).toEqual([{ type: 'step', step: 1 }]);
    expect(r.error).toBe('metrics.jsonl line 3: not a JSON object');
    writeFileSync(file, `${JSON.stringify({ type: 'step' })}\n`);
    expect(readMetricsFrom(file).error).toBe("metrics.jsonl line 1: no numeric 'step'");
  });
});

describe('lorafit ui', () => {
  beforeAll(() => ensureBuilt());
  it('without --run or --runs says what to give', async () => {
    const r = await runCli(['ui', '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [E_OPTION]: give --run DIR (a training output folder) or --runs DIR (a folder of runs)');
  });
});
