// The Python reference stack (torch, transformers, peft) for interop tests. CI and the README's
// test command create the venv and set LORAFIT_PYTHON; without it these tests fail loudly
// rather than skip.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function python(): string {
  const p = process.env.LORAFIT_PYTHON;
  if (!p) {
    throw new Error('interop tests need LORAFIT_PYTHON=/path/to/python with torch, transformers and peft (bash scripts/setup-python.sh prints one)');
  }
  return p;
}

export const INTEROP_DIR = fileURLToPath(new URL('../interop/', import.meta.url));

export async function runPython(script: string, args: string[]): Promise<string> {
  const { stdout } = await run(python(), [join(INTEROP_DIR, script), ...args], {
    env: { ...process.env, OMP_NUM_THREADS: '1', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 64 << 20,
  });
  return stdout;
}

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lorafit-${prefix}-`));
}
