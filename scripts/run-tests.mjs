// `npm test`: builds and runs the C++ tests of native/ with ctest (scripts/native-tests.mjs;
// LORAFIT_NATIVE_TESTS=0 skips them), then vitest with the interop Python (LORAFIT_PYTHON,
// defaulting to the venv that scripts/setup-python.sh makes), and ends with one plain
// "N passed, N failed, N skipped" line counting both (scripts/test-summary.mjs: a vitest crash
// before its report, or a C++ test build that fails, counts as a failure).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { runNativeTests } from './native-tests.mjs';
import { combine, runVitest } from './test-summary.mjs';

const env = { ...process.env };
if (!env.LORAFIT_PYTHON) {
  const cached = join(env.LORAFIT_CACHE ?? join(homedir(), '.cache', 'lorafit'), 'venv', 'bin', 'python');
  if (existsSync(cached)) env.LORAFIT_PYTHON = cached;
}
// Some tests run the compiled library in child processes, as an application would.
// The library, then the dashboard's page script (lib/ui/page has its own tsconfig: DOM types).
const tsc = spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit', env });
const page = tsc.status === 0 ? spawnSync('npx', ['tsc', '-p', 'lib/ui/page'], { stdio: 'inherit', env }) : tsc;
if (tsc.status !== 0 || page.status !== 0) {
  console.log('tsc failed: nothing was tested\n0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
const native = env.LORAFIT_NATIVE_TESTS === '0' ? null : runNativeTests();
if (native) console.log(`C++ tests (ctest): ${native.passed} passed, ${native.failed} failed, ${native.skipped} skipped`);
const s = combine(runVitest(process.argv.slice(2), { env }), native);
for (const n of s.notes) console.log(n);
console.log(s.line);
process.exit(s.ok ? 0 : 1);
