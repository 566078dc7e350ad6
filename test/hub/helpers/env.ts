// Test isolation: no real token, endpoint or cache from the machine leaks into hub tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KEYS = ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'HF_TOKEN_PATH', 'LORAFIT_HUB_RETRY_MS'];

export function isolateEnv(): { dir: string; restore: () => void } {
  const saved = new Map(KEYS.map((k) => [k, process.env[k]]));
  for (const k of KEYS) delete process.env[k];
  const dir = mkdtempSync(join(tmpdir(), 'lorafit-hub-'));
  process.env.HF_HOME = join(dir, 'hf-home'); // no token file from the machine
  process.env.LORAFIT_HUB_RETRY_MS = '5';
  return {
    dir,
    restore() {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function tmpCache(root: string, name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}
