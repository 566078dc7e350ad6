import { describe, expect, it } from 'vitest';
import { lcsLength, rouge, rougeCorpus, rougeDefaultTokenize, rougeZhCharTokenize } from '../../lib/eval/rouge.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

// [rouge-score tests]: values asserted in google-research/google-research
//   rouge/rouge_scorer_test.py (the "AgainstRouge155" ones come from the original
//   Perl ROUGE-1.5.5), on rouge/testdata/{target,prediction}.txt copied below.
// [rouge-score 0.1.2]: computed with `pip install rouge-score==0.1.2`
//   (test/eval/reference/rouge_ref.py).

const TARGETS = [
  "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
  "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n",
];
const PREDICTIONS = [
  "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
  "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n",
];

function expectScore(s: { precision: number; recall: number; fmeasure: number } | undefined, p: number, r: number, f: number, digits = 12) {
  expect(s).toBeDefined();
  expect(s!.precision).toBeCloseTo(p, digits);
  expect(s!.recall).toBeCloseTo(r, digits);
  expect(s!.fmeasure).toBeCloseTo(f, digits);
}

describe('rouge (rouge-score port)', () => {
  it('small cases from rouge_scorer_test.py [rouge-score tests]', () => {
    expectScore(rouge('testing', 'testing one two').rouge1, 1, 1 / 3, 1 / 2);
    expectScore(rouge('testing one', 'testing one two').rouge2, 1, 1 / 2, 2 / 3);
    expectScore(rouge('testing one', 'testing one two').rougeL, 1, 2 / 3, 4 / 5);
    expectScore(rouge('testing two', 'testing one two').rougeL, 1, 2 / 3, 4 / 5);
    const multi = rouge('text first', ['first text', 'first something']);
    expect(multi.rouge1!.fmeasure).toBeCloseTo(1, 12);
    expect(multi.rouge2!.fmeasure).toBe(0);
    expect(multi.rougeL!.fmeasure).toBeCloseTo(0.5, 12);
    for (const t of ['rouge1', 'rouge2', 'rougeL'] as const) expectScore(rouge('', 'testing one two')[t], 0, 0, 0);
  });

  it('agrees with Perl ROUGE-1.5.5 on the rouge-score testdata [rouge-score tests]', () => {
    const a = rouge(PREDICTIONS[0]!, TARGETS[0]!);
    expectScore(a.rouge1, 0.6875, 0.40741, 0.51163, 5);
    expectScore(a.rouge2, 0.53333, 0.30769, 0.39024, 5);
    expectScore(a.rougeL, 0.6875, 0.40741, 0.51163, 5);
    const b = rouge(PREDICTIONS[1]!, TARGETS[1]!);
    expectScore(b.rouge1, 0.65385, 0.40476, 0.5, 5);
    expectScore(b.rouge2, 0.48, 0.29268, 0.36364, 5);
    expectScore(b.rougeL, 0.65385, 0.40476, 0.5, 5);
  });

  it('English sentences [rouge-score 0.1.2]', () => {
    const a = rouge('The quick brown dog jumps on the log.', 'The quick brown fox jumps over the lazy dog');
    expectScore(a.rouge1, 0.75, 0.6666666666666666, 0.7058823529411765);
    expectScore(a.rouge2, 0.2857142857142857, 0.25, 0.26666666666666666);
    expectScore(a.rougeL, 0.625, 0.5555555555555556, 0.5882352941176471);
    const b = rouge('the gunman was shot dead by police', 'police killed the gunman');
    expectScore(b.rouge1, 0.42857142857142855, 0.75, 0.5454545454545454);
    expectScore(b.rouge2, 0.16666666666666666, 0.3333333333333333, 0.2222222222222222);
    expectScore(b.rougeL, 0.2857142857142857, 0.5, 0.36363636363636365);
  });

  it('default tokeniser drops non-ASCII like rouge-score [rouge-score 0.1.2]', () => {
    expect(rougeDefaultTokenize("Hello, World! It's 2024; naïve café costs $3.50 北京")).toEqual([
      'hello', 'world', 'it', 's', '2024', 'na', 've', 'caf', 'costs', '3', '50',
    ]);
    const c = rouge('hello world its 2024 naive cafe costs 3 50', "Hello, World! It's 2024; naïve café costs $3.50");
    expectScore(c.rouge1, 0.6666666666666666, 0.5454545454545454, 0.6);
    expectScore(c.rouge2, 0.375, 0.3, 0.33333333333333326);
  });

  it('multiple references pick the best F per type [rouge-score 0.1.2 score_multi]', () => {
    const m = rouge('the cat was found under the big bed', ['the cat was under the bed', 'the cat was found under the bed']);
    expectScore(m.rouge1, 0.875, 1.0, 0.9333333333333333);
    expectScore(m.rouge2, 0.7142857142857143, 0.8333333333333334, 0.7692307692307692);
    expectScore(m.rougeL, 0.875, 1.0, 0.9333333333333333);
  });

  it("Chinese: 0 with the default tokeniser, character ROUGE with 'zh-char' [rouge-score 0.1.2 + char tokenizer]", () => {
    const pred = '今天天气很好，我们去公园散步吧。';
    const ref = '今天天气不错，我们去公园走走吧。';
    expect(rouge(pred, ref).rouge1!.fmeasure).toBe(0);
    const z = rouge(pred, ref, { tokenizer: 'zh-char' });
    expectScore(z.rouge1, 0.7142857142857143, 0.7142857142857143, 0.7142857142857143);
    expectScore(z.rouge2, 0.5384615384615384, 0.5384615384615384, 0.5384615384615384);
    expectScore(z.rougeL, 0.7142857142857143, 0.7142857142857143, 0.7142857142857143);
    expect(rougeZhCharTokenize('他在2023年发布了GPT-4模型')).toEqual(['他', '在', '2023', '年', '发', '布', '了', 'gpt', '4', '模', '型']);
    const z2 = rouge('他在2023年发布了GPT-4模型的评测报告。', '他于2023年发布了GPT-4模型评测报告。', { tokenizer: 'zh-char' });
    expectScore(z2.rouge1, 0.875, 0.9333333333333333, 0.9032258064516129);
    expectScore(z2.rouge2, 0.7333333333333333, 0.7857142857142857, 0.7586206896551724);
    expectScore(z2.rougeL, 0.875, 0.9333333333333333, 0.9032258064516129);
  });

  it('custom tokenizer function, rougeTypes and invalid types', () => {
    const r = rouge('a-b c', 'a b c', { tokenizer: (t) => t.split(/[\s-]+/), rougeTypes: ['rouge1'] });
    expect(Object.keys(r)).toEqual(['rouge1']);
    expect(r.rouge1!.fmeasure).toBe(1);
    expect(() => rouge('a', 'a', { rougeTypes: ['rouge0'] })).toThrowError(/invalid ROUGE type/);
    expect(() => rouge('a', 'a', { rougeTypes: ['rouge10' as 'rouge1'] })).toThrowError(LorafitEvalError);
  });

  it('lcsLength and rougeCorpus mean', () => {
    expect(lcsLength(['a', 'b', 'c', 'b', 'd', 'a', 'b'], ['b', 'd', 'c', 'a', 'b', 'a'])).toBe(4);
    const c = rougeCorpus(['testing', 'testing one'], ['testing one two', 'testing one two']);
    expect(c.mean.rouge1!.fmeasure).toBeCloseTo((1 / 2 + 4 / 5) / 2, 12);
    expect(c.perExample).toHaveLength(2);
    expect(() => rougeCorpus(['a'], [])).toThrowError(/1 predictions but 0/);
  });
});
