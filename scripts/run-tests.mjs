// `npm test`: runs vitest with the interop Python (LORAFIT_PYTHON, defaulting to the venv that
// scripts/setup-python.sh makes) and ends with a plain "N passed, N failed, N skipped" line
// (scripts/test-summary.mjs: a vitest crash before its report counts as a failure).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { runVitest } from './test-summary.mjs';

const env = { ...process.env };
if (!env.LORAFIT_PYTHON) {
  const cached = join(env.LORAFIT_CACHE ?? join(homedir(), '.cache', 'lorafit'), 'venv', 'bin', 'python');
  if (existsSync(cached)) env.LORAFIT_PYTHON = cached;
}
// Some tests run the compiled library in child processes, as an application would.
const tsc = spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit', env });
if (tsc.status !== 0) {
  console.log('tsc failed: nothing was tested\n0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
const s = runVitest(process.argv.slice(2), { env });
for (const n of s.notes) console.log(n);
console.log(s.line);
process.exit(s.ok ? 0 : 1);
