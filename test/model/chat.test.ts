// chat() / chatStream() on a tiny random qwen2 model with the real Qwen3 tokenizer and template.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chat, chatStopIds, chatStream, loadModelAndTokenizer, type GenerationStats } from '../../lib/model/chat.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import type { Model } from '../../lib/model/model.js';
import type { Tokenizer } from '../../lib/text/tokenizer.js';
import { byteLevelChars } from '../export/helpers.js';
import { makeTinyQwen3Model } from '../helpers/tiny-qwen3.js';

const messages = [
  { role: 'system', content: 'You answer in verse.' },
  { role: 'user', content: '床前明月光，下一句是什么？ And in English?' },
];

describe('chat on a tiny qwen2 model with the Qwen3 tokenizer', () => {
  let dir: string;
  let model: Model;
  let tokenizer: Tokenizer;
  let adapter: LoraAdapter;

  beforeAll(async () => {
    dir = (await makeTinyQwen3Model()).dir;
    ({ model, tokenizer } = await loadModelAndTokenizer(dir));
    adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, name: 'tuned', activate: false, seed: 3 });
    // PEFT's init leaves B = 0 (no change); give B values so the adapter changes the model.
    const t = await adapter.tensors();
    let s = 1;
    for (const [k, v] of t) {
      if (k.includes('lora_B')) for (let i = 0; i < v.data.length; i++) v.data[i] = Math.sin(s++) * 2;
    }
    await adapter.setTensors(t);
  });
  afterAll(async () => {
    await model?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('feeds the model exactly encodeChat(messages, { addGenerationPrompt: true })', async () => {
    const spy = vi.spyOn(model, 'generateStream');
    try {
      await chat(model, tokenizer, messages, { maxNewTokens: 4, adapter: null });
      const expected = await tokenizer.encodeChat(messages, { addGenerationPrompt: true });
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0][0]).toEqual(expected);
      // The Qwen3 template ends the prompt with the assistant header, and no BOS was added again.
      expect(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }).endsWith('<|im_start|>assistant\n')).toBe(true);
      expect(expected[0]).toBe(tokenizer.tokenToId('<|im_start|>'));
    } finally {
      spy.mockRestore();
    }
  });

  it('returns the decode of the generated ids before the first stop id; the stream joins to the same text', async () => {
    const ids = await tokenizer.encodeChat(messages, { addGenerationPrompt: true });
    const stops = chatStopIds(model, tokenizer);
    expect(stops).toContain(tokenizer.tokenToId('<|im_end|>'));
    const [generated] = await model.generate(ids, { maxNewTokens: 24, eosTokenId: stops, adapter: null });
    const cut = generated.findIndex((t) => stops.includes(t));
    const expected = await tokenizer.decode(cut < 0 ? generated : generated.slice(0, cut), { skipSpecialTokens: true });
    const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
    const answer = await chat(model, tokenizer, messages, { maxNewTokens: 24, adapter: null }, stats);
    expect(answer).toBe(expected);
    expect(answer.length).toBeGreaterThan(0);
    expect(stats.promptTokens).toBe(ids.length);
    expect(stats.completionTokens).toBe(generated.length);
    const pieces: string[] = [];
    for await (const p of chatStream(model, tokenizer, messages, { maxNewTokens: 24, adapter: null })) pieces.push(p);
    expect(pieces.join('')).toBe(answer);
    for (const p of pieces) expect(p).not.toMatch(/\uFFFD/);
  });

  it('a forced end-of-turn id (eosTokenId) ends the answer before it', async () => {
    const ids = await tokenizer.encodeChat(messages, { addGenerationPrompt: true });
    const [free] = await model.generate(ids, { maxNewTokens: 12, eosTokenId: [], adapter: null });
    const k = free.findIndex((t, i) => i >= 2 && free.indexOf(t) === i);  // first fresh token at position >= 2
    expect(k).toBeGreaterThanOrEqual(2);
    const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
    const answer = await chat(model, tokenizer, messages, { maxNewTokens: 12, eosTokenId: free[k], adapter: null }, stats);
    expect(answer).toBe(await tokenizer.decode(free.slice(0, k), { skipSpecialTokens: true }));
    expect(stats.finishReason).toBe('stop');
    expect(stats.completionTokens).toBe(k + 1);
    const long = await chat(model, tokenizer, messages, { maxNewTokens: 12, eosTokenId: [], adapter: null }, stats);
    expect(stats.finishReason).toBe('length');
    expect(long.startsWith(answer)).toBe(true);
  });

  it('a stop string ends the answer (also when streamed)', async () => {
    const free = await chat(model, tokenizer, messages, { maxNewTokens: 24, eosTokenId: [], adapter: null });
    const chars = [...free];
    expect(chars.length).toBeGreaterThan(4);
    // A stop string from the middle of the free answer: the answer ends right before it.
    const at = Math.floor(chars.length / 2);
    const stop = chars.slice(at, at + 2).join('');
    const expected = free.slice(0, free.indexOf(stop));
    const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
    expect(await chat(model, tokenizer, messages, { maxNewTokens: 24, eosTokenId: [], adapter: null, stop: [stop] }, stats)).toBe(expected);
    expect(stats.finishReason).toBe('stop');
    const pieces: string[] = [];
    for await (const p of chatStream(model, tokenizer, messages, { maxNewTokens: 24, eosTokenId: [], adapter: null, stop: [stop] })) pieces.push(p);
    expect(pieces.join('')).toBe(expected);
  });

  it('adapter per call: null gives the base answer, a named adapter with non-zero B another one', async () => {
    const base1 = await chat(model, tokenizer, messages, { maxNewTokens: 16, eosTokenId: [], adapter: null });
    const tuned = await chat(model, tokenizer, messages, { maxNewTokens: 16, eosTokenId: [], adapter: 'tuned' });
    const base2 = await chat(model, tokenizer, messages, { maxNewTokens: 16, eosTokenId: [], adapter: null });
    expect(base2).toBe(base1);
    expect(tuned).not.toBe(base1);
    // The per-call choice does not leave the adapter switched on.
    expect(await chat(model, tokenizer, messages, { maxNewTokens: 16, eosTokenId: [] })).toBe(base1);
  });

  it('streams whole characters when a multi-byte character is split over byte tokens', async () => {
    // Qwen's byte-level vocabulary has one token per byte: feed 月 (e6 9c 88) as three tokens.
    const chars = byteLevelChars();
    const byteIds = [...Buffer.from('月', 'utf8')].map((b) => tokenizer.tokenToId(chars[b])!);
    const ids = [...(await tokenizer.encode('Moon ', { addSpecialTokens: false })), ...byteIds, ...byteIds, ...(await tokenizer.encode('!', { addSpecialTokens: false })), tokenizer.tokenToId('<|im_end|>')!, 42];
    const spy = vi.spyOn(model, 'generateStream').mockImplementation(async function* () {
      yield* ids;
    });
    try {
      const pieces: string[] = [];
      for await (const p of chatStream(model, tokenizer, messages)) pieces.push(p);
      expect(pieces.join('')).toBe('Moon 月月!');
      for (const p of pieces) expect(p).not.toMatch(/\uFFFD/);
      expect(await chat(model, tokenizer, messages)).toBe('Moon 月月!');
    } finally {
      spy.mockRestore();
    }
  });

  it('rejects malformed messages with an option error', async () => {
    await expect(chat(model, tokenizer, [], {})).rejects.toMatchObject({ code: 'E_OPTION' });
    await expect(chat(model, tokenizer, [{ role: 'user' } as never], {})).rejects.toMatchObject({ code: 'E_OPTION' });
  });
});
