/**
 * Interop: our chat template rendering and conversation token ids against transformers'
 * apply_chat_template, run live. Needs a Python with transformers:
 *   LORAFIT_PYTHON=/path/to/venv/bin/python npx vitest run test/interop
 * Without LORAFIT_PYTHON it fails (CI and the README's test command set it).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import { tokenizeRecord } from '../../lib/data/tokenize.js';
import { loadTokenizer, modelDir, type ModelName } from '../data/helpers.js';

import { python } from '../helpers/python.js';


const SCRIPT = `
import json, sys
from transformers import AutoTokenizer
req = json.load(sys.stdin)
tok = AutoTokenizer.from_pretrained(req["dir"])
out = []
for case in req["cases"]:
    kwargs = dict(tokenize=False, add_generation_prompt=case.get("gen", False))
    if case.get("tools"): kwargs["tools"] = case["tools"]
    kwargs.update(case.get("extra", {}))
    if not tok.chat_template: kwargs["chat_template"] = req["fallback"]
    try:
        text = tok.apply_chat_template(case["messages"], **kwargs)
        out.append({"text": text, "ids": tok(text, add_special_tokens=False)["input_ids"]})
    except Exception as e:
        out.append({"error": str(e)})
json.dump(out, sys.stdout, ensure_ascii=False)
`;

const CASES: Array<{ messages: ChatMessage[]; gen?: boolean; tools?: unknown[]; extra?: Record<string, unknown> }> = [
  { messages: [{ role: 'user', content: '写一首关于秋天的诗 🍁' }, { role: 'assistant', content: '秋风起，落叶黄。\n雁南飞，思故乡。' }] },
  {
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Tabs\tand  spaces  ' },
      { role: 'assistant', content: '\nleading newline kept?' },
      { role: 'user', content: 'Ünïcödé 𝔘𝔫𝔦' },
      { role: 'assistant', content: 'ok 👍🏿' },
    ],
  },
  { messages: [{ role: 'user', content: 'next?' }], gen: true },
  { messages: [{ role: 'user', content: 'think off' }], gen: true, extra: { enable_thinking: false } },
  {
    messages: [
      { role: 'user', content: 'weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"c": 18}' },
      { role: 'assistant', content: '18°C.' },
    ],
    tools: [{ type: 'function', function: { name: 'weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  },
];

describe('apply_chat_template interop (live transformers)', () => {
  it.each(['qwen3', 'llama3_1', 'gemma3', 'llama2'] as ModelName[])('%s renders and tokenizes like transformers', async (name) => {
    const tok = await loadTokenizer(name);
    const input = JSON.stringify({ dir: modelDir(name), cases: CASES, fallback: tok.usesFallbackChatTemplate ? tok.chatTemplate : null });
    const results = JSON.parse(execFileSync(python(), ['-c', SCRIPT], { input, maxBuffer: 64 << 20 }).toString('utf8')) as Array<
      { text: string; ids: number[] } | { error: string }
    >;
    for (const [i, c] of CASES.entries()) {
      const want = results[i];
      if ('error' in want) {
        expect(() => tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.gen, tools: c.tools, extra: c.extra })).toThrow();
        continue;
      }
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.gen, tools: c.tools, extra: c.extra });
      expect(text, `case ${i}`).toBe(want.text);
      expect(await tok.encode(text, { addSpecialTokens: false }), `case ${i}`).toEqual(want.ids);
      if (!c.gen) {
        const ex = await tokenizeRecord(tok, { kind: 'conversation', messages: c.messages, tools: c.tools }, { templateVariables: c.extra });
        expect(Array.from(ex.inputIds), `case ${i}`).toEqual(want.ids);
      }
    }
  });
});
