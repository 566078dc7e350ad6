// Generation options that used to be refused or ignored: temperature 0 is greedy; `stop` strings
// end a row at the id level with a decoder (refused without one), `stopSequences` end it on token
// ids; streamText's final flush keeps a trailing U+FFFD.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamText } from '../../lib/model/generation.js';
import { Model } from '../../lib/model/model.js';
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

  it('stop strings without a decoder are refused, naming the option', async () => {
    const err = await model.generate(prompt, { maxNewTokens: 4, stop: ['x'] }).catch((e) => e);
    expect(err.code).toBe('E_OPTION');
    expect(err.message).toMatch(/stop/);
    expect(err.message).toMatch(/decoder/);
    const stream = model.generateStream(prompt, { maxNewTokens: 4, stop: ['x'] });
    await expect(stream.next()).rejects.toMatchObject({ code: 'E_OPTION' });
    await expect(model.generate(prompt, { stopSequences: [[]] })).rejects.toMatchObject({ code: 'E_OPTION', message: expect.stringMatching(/stopSequences/) });
    await expect(model.generate(prompt, { stop: [''], decoder: letters })).rejects.toMatchObject({ code: 'E_OPTION' });
  });

  it('a stop string ends the row with the token that completes it (decoder given)', async () => {
    const free = greedy;
    const text = await letters.decode(free);
    const stop = text.slice(3, 5);
    // The first k whose decoded prefix holds the stop string.
    let k = 0;
    while (!(await letters.decode(free.slice(0, k + 1))).includes(stop)) k++;
    const [row] = await model.generate(prompt, { maxNewTokens: 8, eosTokenId: [], stop: [stop], decoder: letters });
    expect(row).toEqual(free.slice(0, k + 1));
    expect(row.length).toBeLessThan(free.length);
    const streamed: number[] = [];
    for await (const t of model.generateStream(prompt, { maxNewTokens: 8, eosTokenId: [], stop: [stop], decoder: letters })) streamed.push(t);
    expect(streamed).toEqual(row);
  });

  it('stopSequences end a row on token ids; in a batch only the row that matched ends', async () => {
    const seq = greedy.slice(3, 5);
    let end = 2;
    while (!(greedy[end - 1] === seq[0] && greedy[end] === seq[1])) end++;
    const [row] = await model.generate(prompt, { maxNewTokens: 8, eosTokenId: [], stopSequences: [seq] });
    expect(row).toEqual(greedy.slice(0, end + 1));
    const short = prompt.slice(3);
    const [other] = await model.generate(short, { maxNewTokens: 8, eosTokenId: [] });
    const otherHits = other.some((t, i) => i > 0 && other[i - 1] === seq[0] && t === seq[1]);
    const batch = await model.generate([prompt, short], { maxNewTokens: 8, eosTokenId: [], stopSequences: [seq] });
    expect(batch[0]).toEqual(row);
    if (!otherHits) expect(batch[1]).toEqual(other);
  });

  it('streamText over generateStream handles the same stop array without a decoder (as chat() does)', async () => {
    const stop = [await bytes.decode(greedy.slice(2, 3))];
    const pieces = await collect(streamText(model.generateStream(prompt, { maxNewTokens: 8, eosTokenId: [], stop }), bytes, stop));
    const full = await bytes.decode(greedy);
    expect(pieces.join('')).toBe(full.slice(0, full.indexOf(stop[0])));
    // Once that stream is done the array is no longer claimed: the id level refuses it again.
    await expect(model.generate(prompt, { maxNewTokens: 2, stop })).rejects.toMatchObject({ code: 'E_OPTION' });
  });
});

describe('streamText final flush', () => {
  it('keeps a trailing U+FFFD: a character cut off by the end, and one the model wrote', async () => {
    const cut = [...Buffer.from('ab', 'utf8'), ...Buffer.from('秋', 'utf8').subarray(0, 2)];
    const pieces = await collect(streamText(fromArray(cut), bytes));
    expect(pieces.join('')).toBe(await bytes.decode(cut));
    expect(pieces.join('')).toBe('ab\uFFFD');
    expect(pieces.slice(0, -1).every((p) => !p.endsWith('\uFFFD'))).toBe(true);
    const written = [...Buffer.from('x\uFFFD\uFFFD', 'utf8')];
    expect((await collect(streamText(fromArray(written), bytes))).join('')).toBe('x\uFFFD\uFFFD');
    // A stop string still cuts before itself in the final flush.
    expect((await collect(streamText(fromArray(cut), bytes, ['b']))).join('')).toBe('a');
  });
});
