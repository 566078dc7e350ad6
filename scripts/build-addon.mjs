// `npm install` entry point: builds build/Release/lorafit.node with cmake-js against the libtorch
// that find-torch.mjs finds. LORAFIT_SKIP_BUILD=1 skips it (pure-TypeScript work, CI caches).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorch, HOW_TO_GET_TORCH } from './find-torch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (process.env.LORAFIT_SKIP_BUILD === '1') {
  console.log('lorafit: LORAFIT_SKIP_BUILD=1, not building the native addon');
  process.exit(0);
}

let torch;
try {
  torch = findTorch();
} catch (e) {
  console.error(`lorafit: ${e.message}`);
  process.exit(1);
}
if (!torch) {
  console.error(HOW_TO_GET_TORCH);
  process.exit(1);
}
console.log(`lorafit: building against libtorch from ${torch.source}: ${torch.root ?? torch.torchDir}`);

const defines = [`--CDNODE_ADDON_API_DIR=${require('node-addon-api').include_dir}`];
if (torch.kind === 'tree') {
  defines.push(`--CDLORAFIT_TORCH_ROOT=${torch.root}`, `--CDLORAFIT_CXX11_ABI=${torch.abi}`);
} else {
  defines.push(`--CDTorch_DIR=${torch.torchDir}`);
}
// LORAFIT_NCCL=1: also the NCCL plugin for backend 'nccl' (CMakeLists.txt says what it needs).
// `cmake-js compile` reuses an existing configuration, so a changed choice is set in it first.
const nccl = process.env.LORAFIT_NCCL === '1' ? 'ON' : 'OFF';
defines.push(`--CDLORAFIT_NCCL=${nccl}`);
const cache = join(root, 'build', 'CMakeCache.txt');
if (existsSync(cache) && !readFileSync(cache, 'utf8').includes(`LORAFIT_NCCL:BOOL=${nccl}`)) {
  const c = spawnSync('cmake', [`-DLORAFIT_NCCL=${nccl}`, join(root, 'build')], { cwd: root, stdio: 'inherit' });
  if (c.status !== 0) process.exit(c.status ?? 1);
}
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [cmakeJs, 'compile', '--out', 'build', ...defines];
if (existsSync('/usr/bin/ninja') || existsSync('/usr/local/bin/ninja')) args.push('-G', 'Ninja');
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? String((await import('node:os')).availableParallelism());
const r = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
});
process.exit(r.status ?? 1);
