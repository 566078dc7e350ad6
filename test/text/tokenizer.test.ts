import { mkdirSync, mkdtempSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { LorafitDataError } from '../../lib/data/errors.js';
import { expected, loadTokenizer, modelDir, type ModelName } from '../data/helpers.js';

const MODELS: ModelName[] = ['qwen3', 'llama3_1', 'gemma3', 'llama2'];

describe.each(MODELS)('Tokenizer %s against transformers', (name) => {
  const exp = expected.models[name];

  it('reads the special tokens and add_bos_token policy', async () => {
    const tok = await loadTokenizer(name);
    expect(tok.bosToken).toBe(exp.bos_token);
    expect(tok.eosToken).toBe(exp.eos_token);
    expect(tok.padToken).toBe(exp.pad_token);
    expect(tok.bosTokenId).toBe(exp.bos_token_id);
    expect(tok.eosTokenId).toBe(exp.eos_token_id);
    expect(tok.usesFallbackChatTemplate).toBe(exp.uses_fallback);
  });

  it('encodes text (Chinese, emoji, whitespace) to the same ids, with and without special tokens', async () => {
    const tok = await loadTokenizer(name);
    for (const text of expected.texts) {
      // transformers 5 rebuilds Llama 2's pipeline with a Metaspace pre-tokenizer that no longer adds
      // sentencepiece's dummy prefix before leading spaces; tokenizer.json (and sentencepiece) keep it.
      const legacyDivergence = name === 'llama2' && text.startsWith('  ');
      const want = legacyDivergence ? exp.encode_tokenizer_json[text] : exp.encode[text];
      expect(await tok.encode(text), text).toEqual(want);
      if (!legacyDivergence) {
        expect(await tok.encode(text, { addSpecialTokens: false }), text).toEqual(exp.encode_no_special[text]);
      }
      if (legacyDivergence) expect(exp.encode[text]).not.toEqual(want); // still divergent upstream?
      else expect(exp.encode_tokenizer_json[text]).toEqual(want);
    }
  });

  it('decodes back to the original text', async () => {
    const tok = await loadTokenizer(name);
    for (const text of expected.texts.slice(2, 4)) {
      const ids = await tok.encode(text, { addSpecialTokens: false });
      const decoded = await tok.decode(ids);
      expect(decoded.trim()).toBe(text.trim());
    }
  });

  it('renders every test conversation exactly like apply_chat_template and tokenizes it the same', async () => {
    const tok = await loadTokenizer(name);
    for (const [key, conversation] of Object.entries(expected.conversations)) {
      const want = exp.chat[key];
      if ('error' in want) {
        expect(() => tok.applyChatTemplate(conversation)).toThrow(LorafitDataError);
        continue;
      }
      const text = tok.applyChatTemplate(conversation);
      expect(text, key).toBe(want.text);
      expect(await tok.encodeChat(conversation), key).toEqual(want.ids);
    }
    expect(tok.applyChatTemplate(expected.generation, { addGenerationPrompt: true })).toBe(exp.generation_prompt);
  });
});

describe('chat templates against hand-written documented formats', () => {
  const conversation = [
    { role: 'system', content: '你是助手。' },
    { role: 'user', content: '你好 👋' },
    { role: 'assistant', content: '你好！有什么可以帮你？😊' },
  ];

  it('Qwen3 uses ChatML with the empty think block on the final turn', async () => {
    const tok = await loadTokenizer('qwen3');
    expect(tok.applyChatTemplate(conversation)).toBe(
      '<|im_start|>system\n你是助手。<|im_end|>\n' +
        '<|im_start|>user\n你好 👋<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\n你好！有什么可以帮你？😊<|im_end|>\n',
    );
    expect(tok.applyChatTemplate(conversation.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\n你是助手。<|im_end|>\n<|im_start|>user\n你好 👋<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(
      tok.applyChatTemplate(conversation.slice(0, 2), { addGenerationPrompt: true, extra: { enable_thinking: false } }),
    ).toMatch(/<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/);
    expect(tok.endOfTurn).toBe('<|im_end|>');
    expect(tok.stopTokenIds).toContain(tok.tokenToId('<|im_end|>'));
  });

  it('Llama 3 uses header ids, bos_token and <|eot_id|>', async () => {
    const tok = await loadTokenizer('llama3_1');
    expect(tok.applyChatTemplate(conversation)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n你是助手。<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\n你好 👋<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n你好！有什么可以帮你？😊<|eot_id|>',
    );
    expect(tok.endOfTurn).toBe('<|eot_id|>');
  });

  it('Gemma 3 folds the system prompt into the first user turn and names the assistant "model"', async () => {
    const tok = await loadTokenizer('gemma3');
    expect(tok.applyChatTemplate(conversation, { addGenerationPrompt: false })).toBe(
      '<bos><start_of_turn>user\n你是助手。\n\n你好 👋<end_of_turn>\n' +
        '<start_of_turn>model\n你好！有什么可以帮你？😊<end_of_turn>\n',
    );
    expect(tok.endOfTurn).toBe('<end_of_turn>');
  });

  it('Gemma 3 raise_exception surfaces as an E_CHAT_TEMPLATE error with the template message', async () => {
    const tok = await loadTokenizer('gemma3');
    const bad = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    expect(() => tok.applyChatTemplate(bad)).toThrow(/Conversation roles must alternate/);
    try {
      tok.applyChatTemplate(bad);
    } catch (err) {
      expect((err as LorafitDataError).code).toBe('E_CHAT_TEMPLATE');
    }
  });

  it('Llama 2 (no template) falls back to ChatML, identical to the fixture generator', async () => {
    const tok = await loadTokenizer('llama2');
    expect(tok.usesFallbackChatTemplate).toBe(true);
    expect(tok.chatTemplate).toBe(expected.chatml_template);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    // <|im_end|> is plain text for Llama 2, so the end of turn is the literal marker.
    expect(tok.endOfTurn).toBe('<|im_end|>');
  });

  it('renders tools with tojson the way Python does (Qwen3 tool calling)', async () => {
    const tok = await loadTokenizer('qwen3');
    const text = tok.applyChatTemplate(expected.tool_conversation as never, { tools: expected.tools });
    expect(text).toBe(expected.models.qwen3.tools);
  });

  it('the chatTemplate option overrides the model template', async () => {
    const tok = await loadTokenizer('qwen3', { chatTemplate: '{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}' });
    expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('[user]x<|im_end|>');
    const chatml = await loadTokenizer('gemma3', { chatTemplate: 'chatml' });
    expect(chatml.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<|im_start|>user\nx<|im_end|>\n');
  });
});

describe('Tokenizer.fromDir with a hand-made folder', () => {
  function makeFolder(config: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
    const dir = mkdtempSync(join(tmpdir(), 'lorafit-tok-'));
    copyFileSync(join(modelDir('llama2'), 'tokenizer.json'), join(dir, 'tokenizer.json'));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    for (const [file, value] of Object.entries(extra)) {
      if (file.endsWith('/')) mkdirSync(join(dir, file), { recursive: true });
      else writeFileSync(join(dir, file), typeof value === 'string' ? value : JSON.stringify(value));
    }
    return dir;
  }

  it('named templates: default, tool_use when tools are given, and by name', async () => {
    const dir = makeFolder({
      bos_token: { content: '<s>', __type: 'AddedToken' },
      eos_token: '</s>',
      chat_template: [
        { name: 'default', template: 'D:{{ messages[0].content }}' },
        { name: 'tool_use', template: 'T:{{ tools | length }}:{{ messages[0].content }}' },
        { name: 'rag', template: 'R:{{ documents[0].text }}' },
      ],
    });
    const tok = await Tokenizer.fromDir(dir);
    const msgs = [{ role: 'user', content: 'q' }];
    expect(tok.applyChatTemplate(msgs)).toBe('D:q');
    expect(tok.applyChatTemplate(msgs, { tools: [{}, {}] })).toBe('T:2:q');
    expect(tok.applyChatTemplate(msgs, { templateName: 'rag', documents: [{ text: 'doc' }] })).toBe('R:doc');
    expect(() => tok.applyChatTemplate(msgs, { templateName: 'nope' })).toThrow(/no chat template named "nope"/);
    expect(tok.bosToken).toBe('<s>');
    const byName = await Tokenizer.fromDir(dir, { chatTemplateName: 'rag' });
    expect(byName.applyChatTemplate(msgs, { documents: [{ text: 'z' }] })).toBe('R:z');
  });

  it('add_bos_token false in the config overrides the tokenizer.json post-processor', async () => {
    const withBos = await Tokenizer.fromDir(makeFolder({ bos_token: '<s>', eos_token: '</s>', add_bos_token: true }));
    const noBos = await Tokenizer.fromDir(makeFolder({ bos_token: '<s>', eos_token: '</s>', add_bos_token: false }));
    const withEos = await Tokenizer.fromDir(
      makeFolder({ bos_token: '<s>', eos_token: '</s>', add_bos_token: true, add_eos_token: true }),
    );
    expect(await withBos.encode('Hello world')).toEqual([1, 22557, 1526]);
    expect(await noBos.encode('Hello world')).toEqual([22557, 1526]);
    expect(await withEos.encode('Hello world')).toEqual([1, 22557, 1526, 2]);
  });

  it('reads special_tokens_map.json, generation_config.json and chat_template.jinja', async () => {
    const dir = makeFolder(
      {},
      {
        'special_tokens_map.json': { bos_token: '<s>', eos_token: '</s>', pad_token: '<unk>' },
        'generation_config.json': { eos_token_id: [2, 0] },
        'chat_template.jinja': '{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}',
      },
    );
    const tok = await Tokenizer.fromDir(dir);
    expect(tok.eosToken).toBe('</s>');
    expect(tok.padTokenId).toBe(0);
    expect(tok.stopTokenIds).toEqual([2, 0]);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<s>x</s>');
    expect(tok.endOfTurn).toBe('</s>');
  });

  it('a folder without tokenizer.json is an E_TOKENIZER error naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lorafit-tok-'));
    await expect(Tokenizer.fromDir(dir)).rejects.toMatchObject({ code: 'E_TOKENIZER', file: join(dir, 'tokenizer.json') });
  });
});

describe('offsets', () => {
  it('are UTF-16 indices even after emoji and supplementary-plane characters', async () => {
    const tok = await loadTokenizer('qwen3');
    const text = '😀😀 world 𠀀 end';
    const { ids, offsets } = await tok.encodeWithOffsets(text, { addSpecialTokens: false });
    const world = offsets.findIndex(([s, e]) => text.slice(s, e) === ' world');
    expect(world).toBeGreaterThan(0);
    expect(text.slice(...offsets[offsets.length - 1])).toBe(' end');
    expect(ids.length).toBe(offsets.length);
  });
});
