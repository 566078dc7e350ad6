// Finds the libtorch that the addon is built against, in the order the README documents:
//   1. LIBTORCH (a libtorch tree: include/, lib/) or Torch_DIR (a folder with TorchConfig.cmake)
//   2. the torch package of an installed PyTorch (LORAFIT_PYTHON, ~/.cache/lorafit/venv, python3, python)
//   3. a system libtorch that find_package(Torch) finds by itself (Debian's libtorch-dev)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const SYSTEM_TORCH_CONFIGS = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch/TorchConfig.cmake',
  '/usr/share/cmake/Torch/TorchConfig.cmake',
  '/usr/local/share/cmake/Torch/TorchConfig.cmake',
];

/** Reads -D_GLIBCXX_USE_CXX11_ABI=N from a libtorch tree's TorchConfig.cmake (1 when absent: 2.7+). */
function cxx11Abi(root) {
  const config = join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (existsSync(config)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(readFileSync(config, 'utf8'));
    if (m) return m[1];
  }
  return '1';
}

function fromTree(root, source) {
  if (!existsSync(join(root, 'include', 'ATen', 'ATen.h')) || !existsSync(join(root, 'lib'))) return null;
  return { kind: 'tree', root, abi: cxx11Abi(root), source };
}

function pythonTorchDir(python) {
  try {
    // find_spec does not import torch: no CUDA libraries are needed to locate it.
    const out = execFileSync(python, ['-c',
      "import importlib.util as u; s=u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out || null;
  } catch {
    return null;
  }
}

export function findTorch(env = process.env) {
  if (env.LIBTORCH) {
    const t = fromTree(env.LIBTORCH, 'LIBTORCH');
    if (!t) throw new Error(`LIBTORCH=${env.LIBTORCH} is not a libtorch folder (expected include/ATen/ATen.h and lib/)`);
    return t;
  }
  if (env.Torch_DIR) {
    if (!existsSync(join(env.Torch_DIR, 'TorchConfig.cmake'))) {
      throw new Error(`Torch_DIR=${env.Torch_DIR} holds no TorchConfig.cmake`);
    }
    return { kind: 'cmake', torchDir: env.Torch_DIR, source: 'Torch_DIR' };
  }
  // the venv scripts/setup-python.sh creates is tried after an explicit LORAFIT_PYTHON
  const cacheVenv = join(env.LORAFIT_CACHE ?? join(homedir(), '.cache', 'lorafit'), 'venv', 'bin', 'python');
  for (const python of [env.LORAFIT_PYTHON, existsSync(cacheVenv) ? cacheVenv : undefined, 'python3', 'python'].filter(Boolean)) {
    const dir = pythonTorchDir(python);
    if (dir) {
      const t = fromTree(dir, `PyTorch of ${python}`);
      if (t) return t;
    }
  }
  const system = SYSTEM_TORCH_CONFIGS.find((p) => existsSync(p));
  if (system) return { kind: 'cmake', torchDir: join(system, '..'), source: 'system libtorch' };
  return null;
}

export const HOW_TO_GET_TORCH = `lorafit needs libtorch (2.x recommended) to build its native addon, and found none.
Any one of these works:
  - pip install torch                     (PyPI's wheel carries libtorch; CPU use needs no GPU)
      then re-run npm install, with LORAFIT_PYTHON=/path/to/python if it is not python3
  - LIBTORCH=/path/to/libtorch npm install   (an unpacked libtorch zip from pytorch.org)
  - Torch_DIR=/path/to/share/cmake/Torch npm install
  - sudo apt-get install libtorch-dev libopenblas0-pthread   (Debian/Ubuntu; libtorch 1.13, CPU only)`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const t = findTorch();
  console.log(t ? JSON.stringify(t) : HOW_TO_GET_TORCH);
  process.exit(t ? 0 : 1);
}
