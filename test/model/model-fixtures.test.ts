// The native model against transformers' own outputs (test/fixtures/hf, made by HF 4.44).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../lib/model/model.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`${arch} fixture`, () => {
    const golden = new Golden(arch);
    const ids = rows(golden.ints('input_ids'), golden.shape('input_ids'));
    const mask = golden.ints('attention_mask');
    const maskRows = rows(mask, golden.shape('attention_mask'));
    let model: Model;

    beforeAll(async () => {
      model = await Model.load(join(HF, arch, 'model'));
    });
    afterAll(async () => {
      await model.dispose();
    });

    it('parses config.json with the architecture defaults', () => {
      expect(model.config.modelType).toBe(arch);
      expect(model.config.hiddenSize).toBe(64);
      expect(model.config.numKeyValueHeads).toBe(2);
      expect(model.config.headDim).toBe(16);
      expect(model.config.tieWordEmbeddings).toBe(false);
    });

    it('logits match transformers within 1e-4 where attention_mask is 1', async () => {
      const out = await model.forward(ids, { attentionMask: maskRows });
      expect(out.shape).toEqual([2, 16, 256]);
      const diff = maxAbsDiffMasked(out.logits, golden.floats('base.logits'), mask, 256);
      expect(diff).toBeLessThan(1e-4);
    });

    it('every hidden state matches within 1e-4', async () => {
      const out = await model.forward(ids, { attentionMask: maskRows, outputHiddenStates: true });
      const keys = golden.keys('base.hidden_states.');
      expect(out.hiddenStates?.length).toBe(keys.length);
      keys.forEach((key, i) => {
        const diff = maxAbsDiffMasked(out.hiddenStates![i], golden.floats(`base.hidden_states.${i}`), mask, 64);
        expect(diff, key).toBeLessThan(1e-4);
      });
    });

    it('lastOnly returns the last position of each row', async () => {
      const full = await model.forward(ids, { attentionMask: maskRows });
      const last = await model.forward(ids, { attentionMask: maskRows, lastOnly: true });
      expect(last.shape).toEqual([2, 1, 256]);
      // a [1, hidden] x [hidden, V] matmul may round differently from the [16, hidden] one
      expect(maxAbsDiff(last.logits.subarray(0, 256), full.logits.subarray(15 * 256, 16 * 256))).toBeLessThan(1e-5);
    });

    it('counts parameters as transformers does', () => {
      // embed 256*64 + lm_head 256*64 + norm 64 + 2 layers * (q 64*64 + k,v 2*32*64 + o 64*64 + mlp 3*64*128 + 2 norms)
      const perLayer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 64 * 128 + 2 * 64 + (arch === 'qwen2' ? 64 + 32 + 32 : 0);
      expect(model.numParameters()).toBe(2 * 256 * 64 + 64 + 2 * perLayer);
    });
  });
}

describe('sharded checkpoint', () => {
  it('model_sharded (index + 3 shards) gives the single-file logits exactly', async () => {
    const golden = new Golden('llama');
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    await using single = await Model.load(join(HF, 'llama', 'model'));
    await using sharded = await Model.load(join(HF, 'llama', 'model_sharded'));
    const a = await single.forward(ids);
    const b = await sharded.forward(ids);
    expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
  });
});
