// Generation against transformers' generate() (fixtures' gen.base / gen.lora, greedy), seeded
// sampling, batches with left padding, and text streaming with stop strings.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamText } from '../../lib/model/generation.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Golden, HF } from '../helpers/golden.js';

/** Byte-level decoding for the vocab-256 fixtures: token = UTF-8 byte. */
const bytes = { decode: async (ids: ArrayLike<number>) => Buffer.from(Array.from(ids)).toString('utf8') };

async function* fromArray(ids: number[]): AsyncGenerator<number> {
  for (const t of ids) yield t;
}

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`${arch} generation`, () => {
    const golden = new Golden(arch);
    const prompt = golden.ints('gen.prompt');
    let model: Model;
    let adapter: LoraAdapter;
    beforeAll(async () => {
      model = await Model.load(join(HF, arch, 'model'));
      adapter = await LoraAdapter.load(model, join(HF, arch, 'adapter'), { activate: false });
    });
    afterAll(async () => model.dispose());

    it('greedy decoding equals transformers generate() for the base model and with the adapter', async () => {
      // eos disabled: the fixture generated exactly 8 tokens
      const base = await model.generate(prompt, { maxNewTokens: 8, adapter: null, eosTokenId: [] });
      expect([...prompt, ...base[0]]).toEqual(golden.ints('gen.base'));
      const tuned = await model.generate(prompt, { maxNewTokens: 8, adapter, eosTokenId: [] });
      expect([...prompt, ...tuned[0]]).toEqual(golden.ints('gen.lora'));
    });

    it('a left-padded batch gives each row what it gives alone', async () => {
      const short = prompt.slice(3);
      const alone = await model.generate(short, { maxNewTokens: 6, adapter: null, eosTokenId: [] });
      const batch = await model.generate([prompt, short], { maxNewTokens: 6, adapter: null, eosTokenId: [] });
      expect(batch[1]).toEqual(alone[0]);
      expect([...prompt, ...batch[0]]).toEqual(golden.ints('gen.base').slice(0, 14));
    });

    it('seeded sampling is reproducible and the seed matters', async () => {
      const opts = { maxNewTokens: 12, doSample: true, temperature: 1.5, topK: 50, topP: 0.95, eosTokenId: [] as number[] };
      const a = await model.generate(prompt, { ...opts, seed: 1 });
      const b = await model.generate(prompt, { ...opts, seed: 1 });
      const c = await model.generate(prompt, { ...opts, seed: 2 });
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    });

    it('stops at an eos id and includes it', async () => {
      const free = await model.generate(prompt, { maxNewTokens: 8, adapter: null, eosTokenId: [] });
      const eos = free[0][3];
      const stopped = await model.generate(prompt, { maxNewTokens: 8, adapter: null, eosTokenId: eos });
      expect(stopped[0]).toEqual(free[0].slice(0, free[0].indexOf(eos) + 1));
    });
  });
}

describe('text streaming', () => {
  it('never splits a multi-byte character and stops at a stop string spanning tokens', async () => {
    const text = '秋风起 🍁 ENDING here';
    const ids = [...Buffer.from(text, 'utf8')];
    const pieces: string[] = [];
    for await (const p of streamText(fromArray(ids), bytes, ['END'])) pieces.push(p);
    expect(pieces.join('')).toBe('秋风起 🍁 ');
    for (const p of pieces) expect(p).not.toMatch(/\uFFFD/);
    const all: string[] = [];
    for await (const p of streamText(fromArray(ids), bytes, [])) all.push(p);
    expect(all.join('')).toBe(text);
    expect(all.length).toBeGreaterThan(5);
  });
});
