// Every architecture against the real transformers from PyPI: test/interop/make_reference.py
// builds a tiny random model exercising the architecture's features (Gemma 2 soft-capping and
// sliding windows, Mistral's window, Llama 3 rope scaling, Qwen2 biases and sliding layers) and
// records transformers' outputs; lorafit loads the saved folder and must agree.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { Model } from '../../lib/model/model.js';
import { Golden, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const CASES: { name: string; args: string[] }[] = [
  { name: 'llama', args: ['--arch', 'llama'] },
  { name: 'llama3', args: ['--arch', 'llama3'] },
  { name: 'qwen2', args: ['--arch', 'qwen2'] },
  { name: 'qwen2-sliding', args: ['--arch', 'qwen2', '--qwen2-sliding'] },
  { name: 'mistral', args: ['--arch', 'mistral'] },
  { name: 'gemma', args: ['--arch', 'gemma'] },
  { name: 'gemma2', args: ['--arch', 'gemma2'] },
];

const root = scratchDir('arch');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(CASES)('$name vs transformers', ({ name, args }) => {
  const out = join(root, name);
  let ref: Golden;

  it('logits and hidden states match within 1e-4, greedy generation equals generate()', async () => {
    await runPython('make_reference.py', [...args, '--out', out]);
    ref = new Golden(name, join(out, 'reference.safetensors'));
    const ids = rows(ref.ints('input_ids'), [2, 16]);
    const mask = ref.ints('attention_mask');
    await using model = await Model.load(join(out, 'model'));
    const vocab = model.config.vocabSize;
    const r = await model.forward(ids, { attentionMask: rows(mask, [2, 16]), outputHiddenStates: true });
    expect(maxAbsDiffMasked(r.logits, ref.floats('base.logits'), mask, vocab)).toBeLessThan(1e-4);
    const hiddenKeys = ref.keys('base.hidden_states.');
    expect(r.hiddenStates!.length).toBe(hiddenKeys.length);
    for (let i = 0; i < hiddenKeys.length; i++) {
      const diff = maxAbsDiffMasked(r.hiddenStates![i], ref.floats(`base.hidden_states.${i}`), mask, model.config.hiddenSize);
      expect(diff, `hidden_states.${i}`).toBeLessThan(1e-4);
    }
    // Greedy decoding with the KV cache (sliding windows and soft-capping included) equals
    // transformers' generate(): 8 prompt tokens + 8 new ones, past the windows of 4.
    const prompt = ref.ints('gen.prompt');
    const [generated] = await model.generate(prompt, { maxNewTokens: 8, eosTokenId: [] });
    expect([...prompt, ...generated]).toEqual(ref.ints('gen.base'));
  });
});
