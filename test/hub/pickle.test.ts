import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isolateEnv } from './helpers/env.js';
import { assertNoPickleOnly, HubError } from '../../lib/hub/index.js';

let env: ReturnType<typeof isolateEnv>;
beforeAll(() => {
  env = isolateEnv();
});
afterAll(() => env.restore());

function folder(name: string, files: string[]): string {
  const dir = join(env.dir, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f), 'x');
  return dir;
}

describe('assertNoPickleOnly', () => {
  it('throws E_PICKLE for a model folder with only pytorch_model.bin, with the conversion line', () => {
    const dir = folder('m', ['config.json', 'pytorch_model.bin']);
    let err: unknown;
    try {
      assertNoPickleOnly(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HubError);
    const e = err as HubError;
    expect(e.code).toBe('E_PICKLE');
    expect(e.message).toContain('pytorch_model.bin');
    expect(e.message).toMatch(/runs arbitrary code/);
    expect(e.message).toContain(`M.from_pretrained('${dir}').save_pretrained('m-safetensors', safe_serialization=True)`);
  });

  it('uses the PEFT line for adapters', () => {
    const dir = folder('a', ['adapter_config.json', 'adapter_model.bin']);
    expect(() => assertNoPickleOnly(dir)).toThrow(/PeftModel\.from_pretrained.*safe_serialization=True/);
  });

  it('passes safetensors folders, trainer-state pickles and empty folders', () => {
    expect(() => assertNoPickleOnly(folder('s', ['config.json', 'model.safetensors', 'pytorch_model.bin']))).not.toThrow();
    expect(() => assertNoPickleOnly(folder('t', ['adapter_config.json', 'training_args.bin', 'optimizer.pt']))).not.toThrow();
    expect(() => assertNoPickleOnly(folder('e', []))).not.toThrow();
  });
});
