// Every tensor of the real SmolLM2-135M-Instruct Q4_1 GGUF (210 Q4_1, token_embd Q8_0, 61 F32):
// the native dequantizer and the native GGUF load path (GgufWeights, with llama.cpp's Q/K
// permutation undone) against gguf-py's GGUFReader + dequantize (+ transformers' reverse
// permutation). Compared by sha256 of the float32 bytes, tensor by tensor.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantizeGguf } from '../../lib/gguf/dequantize.js';
import { loadGguf, reference, sha256, smollm2Gguf } from './reference.js';

interface Tensor {
  gguf: string;
  name: string | null;
  type: number;
  typeName: string;
  offset: number;
  nbytes: number;
  shape: number[];
  count: number;
  permuteHeads: number;
  rawSha: string;
  hfSha: string;
  head: number[];
}
interface Described {
  config: Record<string, unknown>;
  tensors: Tensor[];
}

let path = '';
// Resolved by the first test and shared; each test awaits it, so a missing file or Python fails
// every test with its message (a throwing beforeAll would only mark them skipped).
let described: Promise<Described> | undefined;
function setup(): Promise<Described> {
  described ??= (async () => {
    path = smollm2Gguf();
    return reference<Described>('file', path);
  })();
  return described;
}

describe('SmolLM2-135M-Instruct.Q4_1.gguf', () => {
  it('holds the expected tensors', async () => {
    const ref = await setup();  // the Python reference: ~10-20 s
    const byType: Record<string, number> = {};
    for (const t of ref.tensors) byType[t.typeName] = (byType[t.typeName] ?? 0) + 1;
    expect(byType).toEqual({ Q4_1: 210, Q8_0: 1, F32: 61 });
    expect(ref.tensors.find((t) => t.gguf === 'token_embd.weight')!.typeName).toBe('Q8_0');
  }, 180_000);

  it('every tensor dequantizes bit-for-bit as gguf does', async () => {
    const ref = await setup();
    const file = readFileSync(path);
    const bad: string[] = [];
    for (const t of ref.tensors) {
      const out = dequantizeGguf(file.subarray(t.offset, t.offset + t.nbytes), t.type, t.count);
      if (sha256(out) !== t.rawSha) bad.push(`${t.gguf} (${t.typeName}): first values ${Array.from(out.subarray(0, 4))}`);
    }
    expect(bad).toEqual([]);
  });

  it('loadModel({ gguf }) holds transformers\' weights: dequantized, Q/K permutation undone', async () => {
    const ref = await setup();
    const tensors = ref.tensors
      .filter((t) => t.name)
      .map((t) => ({ name: t.name!, offset: t.offset, type: t.type, shape: t.shape, ...(t.permuteHeads ? { permuteHeads: t.permuteHeads } : {}) }));
    const model = await loadGguf(path, { configJson: JSON.stringify(ref.config), tensors });
    try {
      expect(model.warnings()).toEqual([]);
      expect(model.numParameters()).toBe(ref.tensors.reduce((n, t) => n + t.count, 0));
      const bad: string[] = [];
      for (const t of ref.tensors) {
        const p = await model.parameter(t.name!);
        expect(p.shape, t.name!).toEqual(t.shape);
        if (sha256(p.data) !== t.hfSha) bad.push(`${t.name} (${t.typeName}): ${Array.from(p.data.subarray(0, 4))}, expected ${t.head}`);
      }
      expect(bad).toEqual([]);
    } finally {
      model.dispose();
    }
  });
});
