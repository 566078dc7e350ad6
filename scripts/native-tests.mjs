// The C++ tests of native/ (test/native/*_test.cc): a plain CMake build in build/native-tests
// (-DLORAFIT_TESTS=ON -DLORAFIT_ADDON=OFF, against the libtorch find-torch.mjs finds), then ctest.
//   node scripts/native-tests.mjs                 # build and run every test; exit status = result
//   node scripts/native-tests.mjs --build quant_test   # only build that target (test/native/build.sh)
// `npm test` (scripts/run-tests.mjs) calls runNativeTests() once before vitest and counts the
// ctest results in its closing line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorch, HOW_TO_GET_TORCH } from './find-torch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = join(root, 'build', 'native-tests');

function run(cmd, args, stdio) {
  const r = spawnSync(cmd, args, { cwd: root, stdio, encoding: 'utf8', env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(availableParallelism()) } });
  return { ok: r.status === 0, error: r.error ? r.error.message : r.status !== 0 ? `${cmd} exited with ${r.status ?? r.signal}` : '' };
}

/**
 * Configures (once) and builds build/native-tests; `target` limits the build to one executable.
 * @returns {{ ok: boolean, error: string }}
 */
export function buildNativeTests({ target, stdio = 'inherit' } = {}) {
  let torch;
  try {
    torch = findTorch();
  } catch (e) {
    return { ok: false, error: e.message };
  }
  if (!torch) return { ok: false, error: HOW_TO_GET_TORCH };
  if (!existsSync(join(BUILD_DIR, 'CMakeCache.txt'))) {
    const defines = ['-DLORAFIT_TESTS=ON', '-DLORAFIT_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release'];
    if (torch.kind === 'tree') defines.push(`-DLORAFIT_TORCH_ROOT=${torch.root}`, `-DLORAFIT_CXX11_ABI=${torch.abi}`);
    else defines.push(`-DTorch_DIR=${torch.torchDir}`);
    const generator = existsSync('/usr/bin/ninja') || existsSync('/usr/local/bin/ninja') ? ['-G', 'Ninja'] : [];
    const c = run('cmake', ['-S', root, '-B', BUILD_DIR, ...generator, ...defines], stdio);
    if (!c.ok) {
      rmSync(join(BUILD_DIR, 'CMakeCache.txt'), { force: true }); // configure again next time
      return { ok: false, error: `cmake configure failed: ${c.error}` };
    }
  }
  const b = run('cmake', ['--build', BUILD_DIR, ...(target ? ['--target', target] : [])], stdio);
  return b.ok ? b : { ok: false, error: `cmake build failed: ${b.error}` };
}

/**
 * Builds and runs every ctest test. A build that fails counts as one failure.
 * @returns {{ passed: number, failed: number, skipped: number, notes: string[], ok: boolean }}
 */
export function runNativeTests({ stdio = 'inherit' } = {}) {
  const built = buildNativeTests({ stdio });
  if (!built.ok) return { passed: 0, failed: 1, skipped: 0, notes: [`C++ tests (ctest) not built: ${built.error.split('\n')[0]}`], ok: false };
  const dir = mkdtempSync(join(tmpdir(), 'lorafit-ctest-'));
  const junit = join(dir, 'ctest.xml');
  const r = run('ctest', ['--test-dir', BUILD_DIR, '--output-on-failure', '--output-junit', junit], stdio);
  let counts = null;
  try {
    if (existsSync(junit)) counts = junitCounts(readFileSync(junit, 'utf8'));
  } catch {
    /* counted below */
  }
  rmSync(dir, { recursive: true, force: true });
  if (!counts) return { passed: 0, failed: 1, skipped: 0, notes: [`ctest wrote no report (${r.error || 'no tests?'}): counted as 1 failure`], ok: false };
  const notes = [];
  if (counts.failed === 0 && !r.ok) {
    counts.failed = 1;
    notes.push(`ctest failed but counted no failed test (${r.error}): counted as 1 failure`);
  }
  return { ...counts, notes, ok: counts.failed === 0 };
}

/** Counts of ctest's JUnit report (`<testsuite tests= failures= skipped= ...>`). */
export function junitCounts(xml) {
  const suite = /<testsuite\b([^>]*)>/.exec(xml);
  if (!suite) return null;
  const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite[1])?.[1] ?? 0);
  const tests = attr('tests');
  const failed = attr('failures') + attr('errors');
  const skipped = attr('skipped') + attr('disabled');
  return { passed: Math.max(0, tests - failed - skipped), failed, skipped };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--build');
  if (i >= 0) {
    const b = buildNativeTests({ target: process.argv[i + 1] });
    if (!b.ok) console.error(b.error);
    process.exit(b.ok ? 0 : 1);
  }
  const s = runNativeTests();
  for (const n of s.notes) console.log(n);
  console.log(`${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`);
  process.exit(s.ok ? 0 : 1);
}
