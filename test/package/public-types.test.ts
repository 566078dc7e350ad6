// The published types expose no native handle: the declarations tsc emits for lib/ (as
// `npm pack` ships them, with stripInternal) mention none of the addon's object types outside
// lib/model/native.d.ts, where they are declared, and Model has no handle.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = mkdtempSync(join(tmpdir(), 'lorafit-dts-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function dtsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? dtsFiles(p) : p.endsWith('.d.ts') ? [p] : [];
  });
}

describe('published types', () => {
  it('mention no native handle type outside native.d.ts, and Model has no handle', () => {
    execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, 'tsconfig.json'), '--emitDeclarationOnly', '--outDir', out], { stdio: 'pipe' });
    const lib = join(out, 'lib');
    const files = dtsFiles(lib);
    expect(files.length).toBeGreaterThan(100);
    const handleTypes = /\b(NativeModel|NativeAdapter|NativeTrainState|NativeGeneration|NativeAddon|ModelChannel|channelOf|nativeAdapterOf)\b/;
    const leaks = files
      .filter((f) => relative(lib, f) !== join('model', 'native.d.ts'))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => handleTypes.test(l)).map((l) => `${relative(lib, f)}: ${l.trim()}`));
    expect(leaks).toEqual([]);
    const model = readFileSync(join(lib, 'model', 'model.d.ts'), 'utf8');
    expect(model).toMatch(/export declare class Model/);
    expect(model).not.toMatch(/\bhandle\b|\bserial\b/);
  });
});
