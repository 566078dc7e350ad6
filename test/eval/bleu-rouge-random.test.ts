import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { corpusBleu, sentenceBleu, type BleuOptions } from '../../lib/eval/bleu.js';
import { rouge } from '../../lib/eval/rouge.js';

// 120 random cases (punctuation, numbers, HTML entities, CJK, full-width forms, odd
// whitespace; all four tokenizers and smoothing methods) scored by sacrebleu 2.6.0
// and rouge-score 0.1.2: test/eval/reference/random_cases.py.
interface Case {
  hyps: string[];
  refs: string[][];
  tok: NonNullable<BleuOptions['tokenize']>;
  lc: boolean;
  sm: NonNullable<BleuOptions['smoothMethod']>;
  corpus: number;
  counts: number[];
  totals: number[];
  sysLen: number;
  refLen: number;
  sentence: number;
  rouge: Record<'rouge1' | 'rouge2' | 'rougeL', [number, number, number]>;
}
const cases: Case[] = JSON.parse(readFileSync(new URL('./fixtures/sacrebleu-rouge-random.json', import.meta.url), 'utf8'));

describe('random cases against sacrebleu 2.6.0 and rouge-score 0.1.2', () => {
  it('has the fixture', () => expect(cases).toHaveLength(120));
  cases.forEach((c, i) => {
    it(`case ${i} (${c.tok}, ${c.sm}${c.lc ? ', lc' : ''})`, () => {
      const o: BleuOptions = { tokenize: c.tok, lowercase: c.lc, smoothMethod: c.sm };
      const r = corpusBleu(c.hyps, c.refs, o);
      expect(r.score).toBeCloseTo(c.corpus, 9);
      expect(r.counts).toEqual(c.counts);
      expect(r.totals).toEqual(c.totals);
      expect([r.sysLen, r.refLen]).toEqual([c.sysLen, c.refLen]);
      expect(sentenceBleu(c.hyps[0]!, c.refs.map((x) => x[0]!), o).score).toBeCloseTo(c.sentence, 9);
      const rg = rouge(c.hyps[0]!, c.refs[0]![0]!);
      for (const k of ['rouge1', 'rouge2', 'rougeL'] as const) {
        expect([rg[k]!.precision, rg[k]!.recall, rg[k]!.fmeasure].map((x) => Number(x.toFixed(12)))).toEqual(
          c.rouge[k].map((x) => Number(x.toFixed(12))),
        );
      }
    });
  });
});
