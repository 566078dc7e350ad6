import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import type { DataRecord } from '../../lib/data/formats.js';
import { loadDataset } from '../../lib/data/load-dataset.js';
import { IGNORE_INDEX, tokenizeDataset, tokenizeRecord, type TokenizedExample } from '../../lib/data/tokenize.js';
import type { Tokenizer } from '../../lib/text/tokenizer.js';
import { expected, FIXTURES, loadTokenizer, type ModelName } from './helpers.js';

const chat = (messages: ChatMessage[], tools?: unknown[]): DataRecord => ({ kind: 'conversation', messages, ...(tools ? { tools } : {}) });

/** Decoded runs of consecutive trained tokens. */
async function trainedRuns(tok: Tokenizer, ex: TokenizedExample): Promise<string[]> {
  const runs: number[][] = [];
  let current: number[] | null = null;
  ex.labels.forEach((label, i) => {
    if (label === IGNORE_INDEX) {
      current = null;
      return;
    }
    expect(label).toBe(ex.inputIds[i]);
    if (current === null) runs.push((current = []));
    current.push(label);
  });
  return Promise.all(runs.map((r) => tok.decode(r)));
}

const EOT: Record<ModelName, string> = {
  qwen3: '<|im_end|>',
  llama3_1: '<|eot_id|>',
  gemma3: '<end_of_turn>',
  llama2: '<|im_end|>', // ChatML fallback: the marker is plain text for Llama 2, and still trained
};

describe.each(['qwen3', 'llama3_1', 'gemma3', 'llama2'] as ModelName[])('conversation masks with %s', (name) => {
  it('input ids equal transformers apply_chat_template ids for every test conversation', async () => {
    const tok = await loadTokenizer(name);
    for (const [key, messages] of Object.entries(expected.conversations)) {
      const want = expected.models[name].chat[key];
      if ('error' in want) continue;
      const ex = await tokenizeRecord(tok, chat(messages));
      expect(Array.from(ex.inputIds), key).toEqual(want.ids);
      expect(ex.labels.length).toBe(ex.inputIds.length);
    }
  });

  it('trains exactly the assistant contents plus the end-of-turn token (Chinese, emoji)', async () => {
    const tok = await loadTokenizer(name);
    const ex = await tokenizeRecord(tok, chat(expected.conversations.multi_zh_emoji));
    const runs = await trainedRuns(tok, ex);
    expect(runs.map((r) => r.trim())).toEqual([
      `今天阳光明媚☀️，适合出去走走。${EOT[name]}`,
      `为什么程序员喜欢黑暗？因为光会产生 bug 🐛。${EOT[name]}`,
    ]);
  });

  it('does not mistake an assistant reply repeated inside a user turn', async () => {
    const tok = await loadTokenizer(name);
    const ex = await tokenizeRecord(tok, chat(expected.conversations.echo));
    expect((await trainedRuns(tok, ex)).map((r) => r.trim())).toEqual([`hi${EOT[name]}`, `hi${EOT[name]}`]);
  });

  it('last-assistant trains only the final turn; all trains every token', async () => {
    const tok = await loadTokenizer(name);
    const record = chat(expected.conversations.multi_zh_emoji);
    const last = await tokenizeRecord(tok, record, { trainOn: 'last-assistant' });
    expect((await trainedRuns(tok, last)).map((r) => r.trim())).toEqual([`为什么程序员喜欢黑暗？因为光会产生 bug 🐛。${EOT[name]}`]);
    const all = await tokenizeRecord(tok, record, { trainOn: 'all' });
    expect(Array.from(all.labels)).toEqual(Array.from(all.inputIds));
  });
});

describe('mask edge cases', () => {
  it('templates that trim content (Llama 3) and that keep it (Qwen3)', async () => {
    const llama = await loadTokenizer('llama3_1');
    const qwen = await loadTokenizer('qwen3');
    const record = chat(expected.conversations.padded);
    expect(await trainedRuns(llama, await tokenizeRecord(llama, record))).toEqual(['spaced answer<|eot_id|>']);
    expect(await trainedRuns(qwen, await tokenizeRecord(qwen, record))).toEqual(['  spaced answer  \n<|im_end|>']);
  });

  it('UTF-16 offsets: many astral-plane emoji before the answer do not shift the mask', async () => {
    const qwen = await loadTokenizer('qwen3');
    const emoji = '😀🎉🐛🚀👨‍👩‍👧𠀀𠀁'.repeat(10);
    const ex = await tokenizeRecord(qwen, chat([
      { role: 'user', content: emoji },
      { role: 'assistant', content: 'OK 好的' },
    ]));
    expect(await trainedRuns(qwen, ex)).toEqual(['OK 好的<|im_end|>']);
  });

  it('Qwen3 reasoning: kept (and trained) on the last turn, dropped from earlier turns', async () => {
    const qwen = await loadTokenizer('qwen3');
    const ex = await tokenizeRecord(qwen, chat([
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: '<think>\nfirst plan\n</think>\n\na1' },
      { role: 'user', content: 'q2' },
      { role: 'assistant', content: '<think>\nsecond plan\n</think>\n\na2' },
    ]));
    const text = await qwen.decode(ex.inputIds);
    expect(text).not.toContain('first plan');
    expect(await trainedRuns(qwen, ex)).toEqual(['a1<|im_end|>', '<think>\nsecond plan\n</think>\n\na2<|im_end|>']);
  });

  it('Qwen3 tool calls: the call itself and the final answer are trained, the tool result is not', async () => {
    const qwen = await loadTokenizer('qwen3');
    const ex = await tokenizeRecord(qwen, chat(expected.tool_conversation as ChatMessage[], expected.tools));
    expect(await qwen.decode(ex.inputIds)).toBe(expected.models.qwen3.tools);
    expect(await trainedRuns(qwen, ex)).toEqual([
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>',
      '北京现在 21 度。<|im_end|>',
    ]);
  });

  it('a template error names the record’s file and line', async () => {
    const gemma = await loadTokenizer('gemma3');
    const record: DataRecord = {
      kind: 'conversation',
      messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }],
      source: { file: 'data.jsonl', line: 7 },
    };
    await expect(tokenizeRecord(gemma, record)).rejects.toMatchObject({ code: 'E_CHAT_TEMPLATE', file: 'data.jsonl', line: 7 });
  });
});

describe('datasets: truncation, dropping, packing', () => {
  it('text records get BOS (per config) and EOS, labels equal to ids', async () => {
    const gemma = await loadTokenizer('gemma3');
    const ex = await tokenizeRecord(gemma, { kind: 'text', text: 'Hello world' });
    expect(Array.from(ex.inputIds)).toEqual([...expected.models.gemma3.encode['Hello world'], gemma.eosTokenId]);
    expect(Array.from(ex.labels)).toEqual(Array.from(ex.inputIds));
  });

  it('reports truncated examples, or drops them, and drops examples left without labels', async () => {
    const qwen = await loadTokenizer('qwen3');
    const records = (await loadDataset(join(FIXTURES, 'data', 'formats', 'alpaca_en_demo.json'))).slice(0, 12);
    const full = await tokenizeDataset(records, qwen, { maxSeqLength: 100_000 });
    const lengths = full.examples.map((e) => e.inputIds.length);
    const limit = 160;
    const over = lengths.filter((n) => n > limit).length;
    expect(over).toBeGreaterThan(0);
    expect(over).toBeLessThan(12);

    const cut = await tokenizeDataset(records, qwen, { maxSeqLength: limit });
    expect(cut.stats.truncated).toBe(over);
    expect(cut.stats.records).toBe(12);
    expect(cut.examples.every((e) => e.inputIds.length <= limit)).toBe(true);
    expect(cut.stats.examples + cut.stats.droppedNoLabels).toBe(12);
    expect(cut.stats.tokens).toBe(cut.examples.reduce((n, e) => n + e.inputIds.length, 0));

    const dropped = await tokenizeDataset(records, qwen, { maxSeqLength: limit, overflow: 'drop' });
    expect(dropped.stats.dropped).toBe(over);
    expect(dropped.examples).toHaveLength(12 - over);
    expect(dropped.stats.truncated).toBe(0);

    // A prompt longer than the limit leaves nothing to learn: dropped and counted.
    const longPrompt = chat([{ role: 'user', content: 'word '.repeat(300) }, { role: 'assistant', content: 'short' }]);
    const none = await tokenizeDataset([longPrompt], qwen, { maxSeqLength: 64 });
    expect(none.examples).toHaveLength(0);
    expect(none.stats.droppedNoLabels).toBe(1);
  });

  it('packs raw text into full blocks that concatenate [bos] text eos documents', async () => {
    const llama = await loadTokenizer('llama3_1');
    const records = await loadDataset(join(FIXTURES, 'data', 'styles', 'yoda.txt'));
    const docs = await Promise.all(records.map((r) => tokenizeRecord(llama, r)));
    const stream = docs.flatMap((d) => Array.from(d.inputIds));
    expect(docs[0].inputIds[0]).toBe(llama.bosTokenId);
    expect(docs[0].inputIds[docs[0].inputIds.length - 1]).toBe(llama.eosTokenId);

    const { examples, stats } = await tokenizeDataset(records, llama, { packing: true, maxSeqLength: 128 });
    expect(examples.length).toBe(Math.ceil(stream.length / 128));
    expect(examples.slice(0, -1).every((e) => e.inputIds.length === 128)).toBe(true);
    expect(examples.flatMap((e) => Array.from(e.inputIds))).toEqual(stream);
    expect(stats.truncated).toBe(0);
    expect(stats.tokens).toBe(stream.length);
    // Each block records its document pieces, so training keeps the documents isolated: a
    // document cut at a block boundary continues as the first piece of the next block.
    const cuts: number[] = [];
    let at = 0;
    for (const e of examples) {
      let sum = 0;
      for (const len of e.segmentLengths!) {
        expect(len).toBeGreaterThan(0);
        sum += len;
        cuts.push((at += len));
      }
      expect(sum).toBe(e.inputIds.length);
    }
    const docEnds = new Set<number>();
    let end = 0;
    for (const d of docs) docEnds.add((end += d.inputIds.length));
    const blockEnds = new Set(examples.map((_, i) => Math.min(stream.length, (i + 1) * 128)));
    expect(new Set(cuts)).toEqual(new Set([...docEnds, ...blockEnds]));
  });

  it('packing conversations keeps their masks', async () => {
    const qwen = await loadTokenizer('qwen3');
    const records = [chat(expected.conversations.single), chat(expected.conversations.echo)];
    const singles = await Promise.all(records.map((r) => tokenizeRecord(qwen, r)));
    const ids = singles.flatMap((e) => Array.from(e.inputIds));
    const labels = singles.flatMap((e) => Array.from(e.labels));
    const want: Array<[number[], number[]]> = [];
    for (let i = 0; i < ids.length; i += 16) want.push([ids.slice(i, i + 16), labels.slice(i, i + 16)]);
    // Blocks with nothing to learn (all prompt) are dropped and counted.
    const kept = want.filter(([, l]) => l.some((x) => x !== IGNORE_INDEX));
    expect(kept.length).toBeLessThan(want.length);
    const { examples, stats } = await tokenizeDataset(records, qwen, { packing: true, maxSeqLength: 16 });
    expect(examples.map((e) => [Array.from(e.inputIds), Array.from(e.labels)])).toEqual(kept);
    expect(stats.droppedNoLabels).toBe(want.length - kept.length);
  });
});

describe('an assistant turn the template does not close', () => {
  // ChatML that leaves an assistant turn open when it ends in "..." (to be continued).
  const OPEN_LAST =
    "{%- for m in messages -%}<|im_start|>{{ m.role }}\n{{ m.content }}{%- if not (m.role == 'assistant' and m.content.endswith('...')) -%}<|im_end|>\n{%- endif -%}{%- endfor -%}" +
    '{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}';
  const messages: ChatMessage[] = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello there...' },
  ];

  it('is an E_CHAT_TEMPLATE error naming the record (file:line) and the marker, not a span that ends early', async () => {
    const tok = await loadTokenizer('qwen3', { chatTemplate: OPEN_LAST });
    expect(tok.endOfTurn?.trim()).toBe('<|im_end|>');
    const record: DataRecord = { ...chat(messages), source: { file: 'data.jsonl', line: 7 } };
    const err = await tokenizeRecord(tok, record).catch((e) => e);
    expect(err.code).toBe('E_CHAT_TEMPLATE');
    expect(err.message).toMatch(/^data\.jsonl:7: assistant message 1 is not closed/);
    expect(err.message).toContain('<|im_end|>');
    // trainOn: 'all' needs no spans and still works; a closed turn trains through its marker.
    expect((await tokenizeRecord(tok, record, { trainOn: 'all' })).inputIds.length).toBeGreaterThan(0);
    const closed = await tokenizeRecord(tok, chat([messages[0], { role: 'assistant', content: 'Hello there.' }]));
    expect((await trainedRuns(tok, closed)).map((r) => r.trim())).toEqual(['Hello there.<|im_end|>']);
  });
});
