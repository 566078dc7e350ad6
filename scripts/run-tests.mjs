// `npm test`: runs vitest with the interop Python (LORAFIT_PYTHON, defaulting to the venv that
// scripts/setup-python.sh makes) and ends with a plain "N passed, N failed" line.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const env = { ...process.env };
if (!env.LORAFIT_PYTHON) {
  const cached = join(env.LORAFIT_CACHE ?? join(homedir(), '.cache', 'lorafit'), 'venv', 'bin', 'python');
  if (existsSync(cached)) env.LORAFIT_PYTHON = cached;
}
// Some tests run the compiled library in child processes, as an application would.
const tsc = spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit', env });
if (tsc.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'lorafit-vitest-'));
const report = join(dir, 'report.json');
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
});
let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  passed = j.numPassedTests ?? 0;
  failed = (j.numFailedTests ?? 0) + (j.numFailedTestSuites ?? 0) - (j.testResults ?? []).filter((s) => s.status === 'failed' && s.assertionResults?.some((a) => a.status === 'failed')).length;
  if (failed < j.numFailedTests) failed = j.numFailedTests;
}
rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(r.status === 0 && failed === 0 ? 0 : 1);
