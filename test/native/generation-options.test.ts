// Generation options that used to be refused or ignored: temperature 0 is greedy; `stop` strings
// end a row at the id level with a decoder (refused without one), `stopSequences` end it on token
// ids; streamText's final flush keeps a trailing U+FFFD.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamText } from '../../lib/generation.js';
import { Model } from '../../lib/model.js';
import { Golden, HF } from '../helpers/golden.js';

/** Byte-level decoding for the vocab-256 fixtures: token = UTF-8 byte. */
const bytes = { decode: async (ids: ArrayLike<number>) => Buffer.from(Array.from(ids)).toString('utf8') };
/** A decoder whose text is easy to search: one letter per id. */
const letters = { decode: async (ids: ArrayLike<number>) => Array.from(ids, (i) => String.fromCharCode(65 + (i % 26))).join('') };

async function* fromArray(ids: number[]): AsyncGenerator<number> {
  for (const t of ids) yield t;
}

async function collect(pieces: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of pieces) out.push(p);
  return out;
}

describe('generation options on the llama fixture', () => {
  const golden = new Golden('llama');
  const prompt = golden.ints('gen.prompt');
  const greedy = golden.ints('gen.base').slice(prompt.length);  // transformers' greedy tokens
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(join(HF, 'llama', 'model'));
  });
  afterAll(async () => model.dispose());

  it('temperature 0 is greedy decoding, also with doSample: true', async () => {
    const t0 = await model.generate(prompt, { maxNewTokens: 8, eosTokenId: [], doSample: true, temperature: 0, seed: 3 });
    expect(t0[0]).toEqual(greedy);
    // The same call at temperature 1.5 samples (so doSample alone would not have given greedy).
    const hot = await model.generate(prompt, { maxNewTokens: 8, eosTokenId: [], doSample: true, temperature: 1.5, seed: 3 });
    expect(hot[0]).not.toEqual(greedy);
    await expect(model.generate(prompt, { maxNewTokens: 2, temperature: -0.5 })).rejects.toMatchObject({ code: 'E_OPTION', message: expect.stringMatching(/temperature/) });
    await expect(model.generate(prompt, { maxNewTokens: 2, temperature: Number.NaN })).rejects.toMatchObject({ code: 'E_OPTION' });
  });

});
