import { describe, expect, it } from 'vitest';
import { exactMatch, f1EmCorpus, tokenF1 } from '../../lib/eval/f1-em.js';
import { answerTokens, normalizeAnswer, splitPyWhitespace } from '../../lib/eval/normalize.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

// [SQuAD v1.1]: computed with normalize_answer/f1_score/exact_match_score of the official
// SQuAD v1.1 evaluate script (test/eval/reference/squad_ref.py). CJK values are hand-computed.

describe('normalizeAnswer (SQuAD)', () => {
  it('lowercases, strips punctuation and articles, collapses whitespace [SQuAD v1.1]', () => {
    expect(normalizeAnswer('The Eiffel Tower!')).toBe('eiffel tower');
    expect(normalizeAnswer('in the year 1889')).toBe('in year 1889');
    expect(normalizeAnswer('the Broncos of Denver, Colorado')).toBe('broncos of denver colorado');
    expect(normalizeAnswer('theory of an anthem')).toBe('theory of anthem');
    expect(normalizeAnswer("Santa Clara, California (Levi's Stadium)")).toBe('santa clara california levis stadium');
  });

  it('strips Unicode (CJK) punctuation, keeps articles inside words', () => {
    expect(normalizeAnswer('「北京」，中国。')).toBe('北京中国');
    expect(normalizeAnswer('Theatre anthem')).toBe('theatre anthem');
    expect(normalizeAnswer('the北京')).toBe('the北京'); // no word boundary between e and 北 (as Python's \b)
    expect(normalizeAnswer('a\u3000b\u00a0the  c')).toBe('b c');
    expect(normalizeAnswer('The Eiffel Tower!', { removeArticles: false })).toBe('the eiffel tower');
  });

  it('splits every CJK character into its own token', () => {
    expect(answerTokens('北京大学')).toEqual(['北', '京', '大', '学']);
    expect(answerTokens('GPT-4模型 は すごい')).toEqual(['gpt4', '模', '型', 'は', 'す', 'ご', 'い']);
    expect(splitPyWhitespace(' a\x1cb\u2028c\ufeffd ')).toEqual(['a', 'b', 'c\ufeffd']);
  });
});

describe('exactMatch / tokenF1', () => {
  const cases: [string, string[], 0 | 1, number][] = [
    ['The Eiffel Tower!', ['the eiffel tower'], 1, 1.0],
    ['in the year 1889', ['1889', 'year 1889'], 0, 0.8],
    ['Denver Broncos', ['Denver Broncos', 'The Denver Broncos', 'Broncos'], 1, 1.0],
    ['the Broncos of Denver, Colorado', ['Denver Broncos'], 0, 0.6666666666666666],
    ['An apple a day keeps the doctor away', ['apple day keeps doctor away'], 1, 1.0],
    ['theory of an anthem', ['the theory anthem'], 0, 0.8],
    ["Santa Clara, California (Levi's Stadium)", ["Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."], 0, 0.625],
    ['cat cat cat dog', ['cat dog dog'], 0, 0.5714285714285715],
  ];
  for (const [pred, refs, em, f1] of cases) {
    it(`${JSON.stringify(pred)} -> EM ${em}, F1 ${f1} [SQuAD v1.1]`, () => {
      expect(exactMatch(pred, refs)).toBe(em);
      expect(tokenF1(pred, refs)).toBeCloseTo(f1, 12);
    });
  }

  it('CJK answers are scored per character (hand-computed)', () => {
    // pred 北京大学是一所大学 (9 tokens) vs 北京大学 (4): 4 common, P=4/9, R=1, F=8/13
    expect(tokenF1('北京大学是一所大学。', '北京大学')).toBeCloseTo(8 / 13, 12);
    // [gpt4, 模, 型] vs [gpt4, 模, 型, 的]: P=1, R=3/4, F=6/7
    expect(tokenF1('GPT-4模型', 'gpt4 模型的')).toBeCloseTo(6 / 7, 12);
    expect(exactMatch('「北京」', ['上海', '北京。'])).toBe(1);
    expect(tokenF1('上海', '北京')).toBe(0);
  });

  it('empty answers follow SQuAD v2.0 (1 only if both are empty)', () => {
    expect(tokenF1('', '')).toBe(1);
    expect(tokenF1('the', 'a')).toBe(1); // both normalise to nothing
    expect(tokenF1('', 'Paris')).toBe(0);
    expect(tokenF1('Paris', '')).toBe(0);
    expect(exactMatch('', '')).toBe(1);
  });

  it('rejects an empty reference list', () => {
    expect(() => tokenF1('x', [])).toThrowError(LorafitEvalError);
  });
});

describe('f1EmCorpus', () => {
  it('averages EM and F1 over examples', () => {
    const r = f1EmCorpus(['in the year 1889', 'Denver Broncos', 'cat cat cat dog'], [['1889', 'year 1889'], 'Denver Broncos', ['cat dog dog']]);
    expect(r.count).toBe(3);
    expect(r.exactMatch).toBeCloseTo(1 / 3, 12);
    expect(r.f1).toBeCloseTo((0.8 + 1 + 0.5714285714285715) / 3, 12);
    expect(r.perExample.map((x) => x.exactMatch)).toEqual([0, 1, 0]);
  });

  it('throws E_EVAL_LENGTH on mismatched lengths', () => {
    try {
      f1EmCorpus(['a', 'b'], ['a']);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LorafitEvalError);
      expect((e as LorafitEvalError).code).toBe('E_EVAL_LENGTH');
    }
  });
});
