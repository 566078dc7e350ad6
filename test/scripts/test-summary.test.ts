// The closing line of `npm test` (scripts/test-summary.mjs): skipped and todo tests are counted,
// and a vitest run that crashes before its report, or fails with no failed test, is a failure.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script without types
import { runVitest, summarize } from '../../scripts/test-summary.mjs';

const work = mkdtempSync(join(tmpdir(), 'lorafit-summary-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A vitest run in a fresh folder, without the outer run's VITEST_* variables. */
function vitestIn(files: Record<string, string>) {
  const root = mkdtempSync(join(work, 'root-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_ENV'));
  return runVitest(['--root', root], { env, stdio: 'pipe', cwd: process.cwd() });
}

describe('test summary line', () => {
  it('counts passed, failed, skipped and todo tests', () => {
    const report = { numPassedTests: 3, numFailedTests: 1, numPendingTests: 2, numTodoTests: 1, testResults: [] };
    expect(summarize(report, { status: 1 }).line).toBe('3 passed, 1 failed, 3 skipped');
    expect(summarize({ ...report, numFailedTests: 0 }, { status: 0 })).toMatchObject({ line: '3 passed, 0 failed, 3 skipped', ok: true });
  });

  it('a missing report, or a nonzero exit with nothing failed, is one loud failure', () => {
    const crashed = summarize(null, { status: 1 });
    expect(crashed).toMatchObject({ line: '0 passed, 1 failed, 0 skipped', ok: false });
    expect(crashed.notes[0]).toMatch(/before writing its report/);
    expect(summarize(null, { status: null, signal: 'SIGKILL' }).notes[0]).toMatch(/killed by SIGKILL/);
    const quiet = summarize({ numPassedTests: 5, numFailedTests: 0, testResults: [] }, { status: 1 });
    expect(quiet).toMatchObject({ line: '5 passed, 1 failed, 0 skipped', ok: false });
    // A file that failed to load counts although none of its tests ran.
    const broken = summarize({ numPassedTests: 2, numFailedTests: 0, testResults: [{ name: '/x.test.ts', status: 'failed', message: 'Cannot find module y', assertionResults: [] }] }, { status: 1 });
    expect(broken.line).toBe('2 passed, 1 failed, 0 skipped');
    expect(broken.notes[0]).toMatch(/x\.test\.ts: Cannot find module y/);
  });

  it('real vitest runs: skips and todos counted; a crashing config and a broken import fail', () => {
    const ok = vitestIn({
      'a.test.mjs': "import { it, expect } from 'vitest';\nit('p', () => expect(1).toBe(1));\nit.skip('s', () => {});\nit.todo('t');\n",
    });
    expect(ok.line).toBe('1 passed, 0 failed, 2 skipped');
    expect(ok.ok).toBe(true);
    const crash = vitestIn({ 'vitest.config.mjs': "throw new Error('config exploded');\n", 'a.test.mjs': "import { it } from 'vitest';\nit('p', () => {});\n" });
    expect(crash.line).toBe('0 passed, 1 failed, 0 skipped');
    expect(crash.ok).toBe(false);
    const broken = vitestIn({
      'a.test.mjs': "import { it } from 'vitest';\nit('p', () => {});\n",
      'b.test.mjs': "import './missing-module.mjs';\nimport { it } from 'vitest';\nit('q', () => {});\n",
    });
    expect(broken.line).toBe('1 passed, 1 failed, 0 skipped');
  }, 120_000);
});
