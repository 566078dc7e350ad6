import { describe, expect, it } from 'vitest';
import { PerplexityAccumulator, perplexityFromBatches, perplexityFromTokenNlls } from '../../lib/eval/perplexity.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

describe('perplexity', () => {
  it('is exp of the token-weighted mean NLL, not the mean of batch perplexities (hand-computed)', () => {
    // Batch 1: 4 tokens each with p = 1/2 -> sumNll = 4 ln 2. Batch 2: 2 tokens with p = 1/4 -> 2 ln 4 = 4 ln 2.
    // Total 8 ln 2 over 6 tokens -> mean 4/3 ln 2, ppl = 2^(4/3) = 2.5198421, 4/3 bits per token.
    const r = perplexityFromBatches([
      { sumNll: 4 * Math.LN2, tokens: 4 },
      { sumNll: 2 * Math.log(4), tokens: 2 },
    ]);
    expect(r.meanNll).toBeCloseTo((4 / 3) * Math.LN2, 14);
    expect(r.perplexity).toBeCloseTo(2 ** (4 / 3), 12);
    expect(r.perplexity).toBeCloseTo(2.519842099789746, 12);
    expect(r.bitsPerToken).toBeCloseTo(4 / 3, 14);
    expect(r.tokens).toBe(6);
    expect(r.batches).toBe(2);
    // The naive mean of per-batch perplexities would be (2 + 4) / 2 = 3.
    expect(r.perplexity).not.toBeCloseTo(3, 2);
  });

  it('a uniform model over V tokens has perplexity V', () => {
    const V = 151_936;
    const nlls = new Float64Array(1000).fill(Math.log(V));
    expect(perplexityFromTokenNlls(nlls).perplexity).toBeCloseTo(V, 6);
  });

  it('streams batches from an async iterable and merges shards', async () => {
    async function* stream() {
      for (let i = 0; i < 100_000; i++) yield { sumNll: 0.1 * 7, tokens: 7 };
    }
    const a = await new PerplexityAccumulator().addAll(stream());
    expect(a.result().meanNll).toBeCloseTo(0.1, 14); // compensated sum keeps 1e-14
    const b = new PerplexityAccumulator().add({ sumNll: 0, tokens: 0 }).add({ sumNll: 3 * 0.1, tokens: 3 });
    a.merge(b);
    expect(a.tokens).toBe(700_003);
    expect(a.batches).toBe(100_002);
    expect(a.result().perplexity).toBeCloseTo(Math.exp(0.1), 13);
  });

  it('rejects invalid batches with E_PPL_INPUT and names the batch', () => {
    const acc = new PerplexityAccumulator().add({ sumNll: 1, tokens: 1 });
    const bad = [
      { sumNll: Number.NaN, tokens: 3 },
      { sumNll: -1, tokens: 3 },
      { sumNll: 1, tokens: 2.5 },
      { sumNll: 1, tokens: 0 },
      { sumNll: Infinity, tokens: 1 },
    ];
    for (const b of bad) {
      try {
        acc.add(b);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(LorafitEvalError);
        expect((e as LorafitEvalError).code).toBe('E_PPL_INPUT');
        expect((e as Error).message).toMatch(/^batch 1:/);
      }
    }
    expect(() => new PerplexityAccumulator().result()).toThrowError(/no tokens/);
  });
});
