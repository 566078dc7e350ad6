// The training loss runs lm_head and cross-entropy only at positions whose (shifted) label is not
// -100 (native/loss.cc: gather the labelled hidden states first, then chunks of lm_head + a fused
// log-softmax, the gradient computed in the same pass). It must equal the plain loss over the full
// [tokens, vocab] logits: here the logits of forward() and a float64 log-softmax in JS.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { collate, collatePaddingFree } from '../../lib/train/batches.js';
import { Golden, HF, rows } from '../helpers/golden.js';

/** Mean CE over positions t with labels[t+1] != -100, from full logits [B, T, V], in float64. */
function fullLogitsLoss(logits: Float32Array, labels: number[][], V: number): { mean: number; tokens: number } {
  let sum = 0;
  let tokens = 0;
  const T = labels[0].length;
  labels.forEach((row, b) => {
    for (let t = 0; t + 1 < T; t++) {
      const y = row[t + 1];
      if (y === -100) continue;
      const off = (b * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[off + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[off + v] - max);
      sum += Math.log(z) + max - logits[off + y];
      tokens++;
    }
  });
  return { mean: sum / tokens, tokens };
}

describe.each(['llama', 'qwen2'] as const)('%s: labelled-only loss', (arch) => {
  const golden = new Golden(arch);
  const ids = rows(golden.ints('input_ids'), [2, 16]);
  const mask = rows(golden.ints('attention_mask'), [2, 16]);
  const labels = rows(golden.ints('labels'), [2, 16]);
  let model: Model;

  beforeAll(async () => {
    model = await Model.load(join(HF, arch, 'model'));
    await LoraAdapter.load(model, join(HF, arch, 'adapter'));
  });
  afterAll(async () => model?.dispose());

  it('equals the full-logits loss within 1e-6 (evalLoss, lossAndGrad, padded and padding-free)', async () => {
    const out = await model.forward(ids, { attentionMask: mask });
    const want = fullLogitsLoss(out.logits, labels, model.config.vocabSize);
    expect(want.tokens).toBe(16);
    const ev = await model.evalLoss([{ inputIds: ids, labels, attentionMask: mask }]);
    expect(ev.tokens).toBe(want.tokens);
    expect(Math.abs(ev.sum / ev.tokens - want.mean)).toBeLessThan(1e-6);
    const tr = await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }]);
    expect(Math.abs(tr.loss - want.mean)).toBeLessThan(1e-6);
    const examples = [0, 1].map((b) => {
      const n = mask[b].reduce((s, m) => s + m, 0);
      return { inputIds: ids[b].slice(0, n), labels: labels[b].slice(0, n) };
    });
    expect(collate(examples).labels).toMatchObject({ shape: [2, 16] });
    const pf = await model.evalLoss([collatePaddingFree(examples)]);
    expect(pf.tokens).toBe(want.tokens);
    expect(Math.abs(pf.sum / pf.tokens - want.mean)).toBeLessThan(1e-6);
    const pft = await model.lossAndGrad([collatePaddingFree(examples)]);
    expect(Math.abs(pft.loss - want.mean)).toBeLessThan(1e-6);
    console.log(`${arch} labelled-only vs full-logits loss: eval ${Math.abs(ev.sum / ev.tokens - want.mean).toExponential(2)}, train ${Math.abs(tr.loss - want.mean).toExponential(2)}, padding-free ${Math.abs(pft.loss - want.mean).toExponential(2)}`);
  });
});
