import { describe, expect, it } from 'vitest';
import { histogram, movingAverageTtr, percentile, splitSentences, styleProfile } from '../../lib/eval/style.js';
import { compareStyle, jensenShannon, styleDistance } from '../../lib/eval/style-distance.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

// All expected values below are hand-computed (derivations in the comments).

describe('splitSentences', () => {
  it('splits on 。！？!? and on . followed by space, keeps closing quotes and decimals', () => {
    expect(splitSentences('今天天气很好！我们去公园吧？“好的。”他说。The value is 3.14. Really?! Yes... ok\nnext line')).toEqual([
      '今天天气很好！', '我们去公园吧？', '“好的。”', '他说。', 'The value is 3.14.', 'Really?!', 'Yes...', 'ok', 'next line',
    ]);
    expect(splitSentences('no terminator at all')).toEqual(['no terminator at all']);
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences('。。！ …')).toEqual([]); // punctuation-only pieces are dropped
  });
});

describe('styleProfile', () => {
  it('English: lengths in words, mean/median/p90/std, histogram, TTR, MATTR, bigrams', () => {
    const p = styleProfile('One. One two. One two three. One two three four. One two three four five.', {
      histogramEdges: [1, 3, 5],
      mattrWindow: 5,
    });
    expect(p.sentences).toBe(5);
    expect(p.units).toBe(15);
    const s = p.sentenceLength;
    expect([s.mean, s.median, s.min, s.max]).toEqual([3, 3, 1, 5]);
    expect(s.p90).toBeCloseTo(4.6, 12); // numpy.percentile([1,2,3,4,5], 90) = 4 + 0.6
    expect(s.std).toBeCloseTo(Math.SQRT2, 12);
    expect(s.histogram.counts).toEqual([2, 2, 1]); // [1,3): 1,2  [3,5): 3,4  [5,∞): 5
    expect(s.histogram.probs).toEqual([0.4, 0.4, 0.2]);
    expect(p.punctuationCounts).toEqual({ '.': 5 });
    expect(p.punctuationDistribution).toEqual({ '.': 1 });
    expect(p.ratios.typeTokenRatio).toBeCloseTo(5 / 15, 12);
    // 11 windows of 5 over one|one two|one two three|...: distinct counts 2,3,3,3,3,4,4,4,4,4,5 = 39
    expect(p.ratios.mattr).toBeCloseTo(39 / 11 / 5, 12);
    expect(p.ratios.punctuationDensity).toBeCloseTo(5 / 20, 12);
    expect(p.ratios.cjkShare).toBe(0);
    expect(p.topNgrams.slice(0, 4)).toEqual([
      { ngram: 'one two', count: 4 },
      { ngram: 'two three', count: 3 },
      { ngram: 'three four', count: 2 },
      { ngram: 'four five', count: 1 },
    ]);
  });

  it('Chinese: lengths in characters, full-width punctuation, question/exclamation rates', () => {
    const p = styleProfile(['今天天气很好！我们去公园吧？', '“好的。”他说。'], { ngramN: 2, topK: 3 });
    expect(p.texts).toBe(2);
    expect(p.sentences).toBe(4);
    expect(p.units).toBe(16);
    expect(p.sentenceLength.mean).toBe(4); // 6, 6, 2, 2
    expect(p.sentenceLength.median).toBe(4);
    expect(p.punctuationCounts).toEqual({ '！': 1, '？': 1, '“': 1, '。': 2, '”': 1 });
    expect(p.punctuationDistribution['。']).toBeCloseTo(2 / 6, 12);
    expect(p.ratios.questionRate).toBe(0.25);
    expect(p.ratios.exclamationRate).toBe(0.25);
    expect(p.ratios.cjkShare).toBe(1);
    expect(p.ratios.punctuationDensity).toBeCloseTo(6 / 22, 12);
    expect(p.ratios.typeTokenRatio).toBeCloseTo(14 / 16, 12); // 天 and 好 appear twice
    // every bigram occurs once: ties sorted by code point
    expect(p.topNgrams).toEqual([
      { ngram: '今天', count: 1 },
      { ngram: '他说', count: 1 },
      { ngram: '们去', count: 1 },
    ]);
  });

  it('mixed CJK/Latin sentence counts CJK characters plus Latin words', () => {
    const p = styleProfile('我们用GPT-4 model测试。');
    expect(p.sentenceLength.mean).toBe(3 + 1 + 1 + 1 + 2); // 我 们 用 | gpt | 4 | model | 测 试
  });

  it('helpers: percentile, histogram, MATTR edge cases', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([10], 90)).toBe(10);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(histogram([0, 1, 100], [1, 10]).counts).toEqual([2, 1]); // below first edge -> bin 0
    expect(() => histogram([1], [5, 1])).toThrowError(LorafitEvalError);
    expect(movingAverageTtr(['a', 'b', 'a'], 10)).toBeCloseTo(2 / 3, 12);
    expect(movingAverageTtr([], 10)).toBe(0);
  });
});

describe('jensenShannon and styleDistance', () => {
  it('JSD base 2 on hand-computed cases', () => {
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 12);
    // M = [.75,.25]; .5*(.5 log2(.5/.75) + .5 log2(2)) + .5*log2(1/.75)
    expect(jensenShannon([1, 1], [1, 0])).toBeCloseTo(0.31127812445913283, 12);
    expect(jensenShannon({ a: 2, b: 2 }, { a: 5 })).toBeCloseTo(0.31127812445913283, 12);
    expect(jensenShannon([3, 1], [6, 2])).toBe(0);
    expect(jensenShannon({}, {})).toBe(0);
    expect(jensenShannon({}, { x: 1 })).toBe(1);
    expect(() => jensenShannon([1], [1, 2])).toThrowError(/equal length/);
  });

  const opts = { histogramEdges: [1, 3] };
  const a = styleProfile('x y. z w.', opts); // lengths [2,2], {'.':2}
  const b = styleProfile('x y z w? q!', opts); // lengths [4,1], {'?':1,'!':1}

  it('combines histogram JSD, punctuation JSD and mean ratio difference', () => {
    const d = styleDistance(a, b);
    expect(d.sentenceLengthJsd).toBeCloseTo(0.31127812445913283, 12); // [2,0] vs [1,1]
    expect(d.punctuationJsd).toBeCloseTo(1, 12); // disjoint marks
    // |Δ| mattr 0, density 1/3-2/7 = 1/21, question .5, exclamation .5, cjk 0 -> mean 22/105
    expect(d.ratioL1).toBeCloseTo(22 / 105, 12);
    expect(d.ratioDiffs.questionRate).toBe(0.5);
    expect(d.total).toBeCloseTo(0.5069339779943142, 12);
    expect(styleDistance(a, a).total).toBe(0);
    const w = styleDistance(a, b, { weights: { sentenceLength: 0, punctuation: 1, ratios: 0 } });
    expect(w.total).toBeCloseTo(1, 12);
  });

  it('compareStyle says tuned outputs moved closer to the reference than base outputs', () => {
    const tuned = styleProfile('p q. r s.', opts);
    const c = compareStyle(a, b, tuned);
    expect(c.tuned.total).toBe(0);
    expect(c.base.total).toBeCloseTo(0.5069339779943142, 12);
    expect(c.improvement).toBeCloseTo(0.5069339779943142, 12);
    expect(c.relativeImprovement).toBeCloseTo(1, 12);
    expect(c.closer).toBe('tuned');
    expect(compareStyle(a, tuned, b).closer).toBe('base');
  });

  it('refuses profiles with different histogram edges', () => {
    expect(() => styleDistance(a, styleProfile('x y.'))).toThrowError(/different histogram edges/);
  });
});
