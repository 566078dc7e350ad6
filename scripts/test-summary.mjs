// The closing line of `npm test`, from vitest's JSON report and its exit status:
// `N passed, N failed, N skipped` (skipped counts it.skip and it.todo). A run that produced no
// report, or exited nonzero with no failure counted (a crash, a kill, an unhandled error), is one
// failure with a reason, never `0 passed, 0 failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * @param {any} report vitest's JSON report (parsed), or null when there is none
 * @param {{ status: number | null, signal?: string | null }} exit how vitest ended
 * @returns {{ passed: number, failed: number, skipped: number, notes: string[], line: string, ok: boolean }}
 */
export function summarize(report, exit) {
  const notes = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.status}`;
  if (!report || typeof report !== 'object') {
    failed = 1;
    notes.push(`vitest ${how} before writing its report (a crash, a kill or a bad argument): counted as 1 failure`);
  } else {
    passed = report.numPassedTests ?? 0;
    skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    failed = report.numFailedTests ?? 0;
    // A file that fails outside its tests (an import error, a throwing hook) has no failed test.
    const brokenFiles = (report.testResults ?? []).filter((s) => s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed'));
    for (const s of brokenFiles) notes.push(`${s.name}: ${String(s.message ?? 'failed outside its tests').split('\n')[0]}`);
    failed += brokenFiles.length;
    if (failed === 0 && (exit.status !== 0 || exit.signal)) {
      failed = 1;
      notes.push(`vitest ${how} but counted no failed test (an unhandled error or a crash after the tests): counted as 1 failure`);
    }
  }
  const line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
  return { passed, failed, skipped, notes, line, ok: failed === 0 && exit.status === 0 && !exit.signal };
}

/**
 * Adds the counts of another test runner (ctest) to vitest's summary; the line keeps its format.
 * @param {{ passed: number, failed: number, skipped: number, notes: string[], ok: boolean }} vitest
 * @param {{ passed: number, failed: number, skipped: number, notes: string[], ok: boolean } | null} other
 */
export function combine(vitest, other) {
  if (!other) return vitest;
  const passed = vitest.passed + other.passed;
  const failed = vitest.failed + other.failed;
  const skipped = vitest.skipped + other.skipped;
  return { ...vitest, passed, failed, skipped, notes: [...other.notes, ...vitest.notes], line: `${passed} passed, ${failed} failed, ${skipped} skipped`, ok: vitest.ok && other.ok };
}

/**
 * Runs `npx vitest run ARGS` with a JSON report beside the default reporter and summarizes it.
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, cwd?: string, stdio?: 'inherit' | 'pipe' }} [options]
 */
export function runVitest(args, options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lorafit-vitest-'));
  const reportFile = join(dir, 'report.json');
  const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`, ...args], {
    stdio: options.stdio ?? 'inherit',
    env: options.env ?? process.env,
    cwd: options.cwd,
    encoding: 'utf8',
  });
  let report = null;
  const notes = [];
  try {
    if (existsSync(reportFile)) report = JSON.parse(readFileSync(reportFile, 'utf8'));
  } catch (e) {
    notes.push(`vitest's report is unreadable: ${e.message}`);
  }
  rmSync(dir, { recursive: true, force: true });
  if (r.error) notes.push(`cannot run vitest: ${r.error.message}`);
  const s = summarize(report, { status: r.status, signal: r.signal });
  return { ...s, notes: [...notes, ...s.notes], output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}
