import { describe, expect, it } from 'vitest';
import { parseJudgeScore } from '../../lib/eval/judge-parse.js';
import { buildRubricMessages } from '../../lib/eval/judge-prompt.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

describe('parseJudgeScore', () => {
  const ok: [string, number, string][] = [
    ['{"score": 7}', 7, 'json'],
    ['  {"score":10}\n', 10, 'json'],
    ['{"score": "6"}', 6, 'json'],
    ['{"score": 0}', 0, 'json'],
    ['```json\n{"score": 8}\n```', 8, 'fenced-json'],
    ['Here is my verdict:\n```\n{"reason": "close {but} not quite", "score": 6.5}\n```\nThanks.', 6.5, 'fenced-json'],
    ['The format is {"score": <0-10>}. My answer: {"score": 3}', 3, 'json'],
    ['I would say {"reasoning": "uses 「」 quotes", "score": 9} overall.', 9, 'json'],
    ["{'score': 4}", 4, 'key-value'],
    ['{"score": 5,}', 5, 'key-value'],
    ['Score: 7/10', 7, 'prose'],
    ['**Score**: 8 / 10 — convincing.', 8, 'prose'],
    ['Rating: 6 out of 10', 6, 'prose'],
    ['score = 2', 2, 'prose'],
    ['Overall I give it 9/10.', 9, 'prose'],
  ];
  for (const [text, score, via] of ok) {
    it(`${JSON.stringify(text)} -> ${score} via ${via}`, () => {
      expect(parseJudgeScore(text)).toEqual({ score, via });
    });
  }

  const bad = [
    '',
    'I think it is quite good.',
    '{"score": 15}',
    '{"score": -1}',
    '{"score": "high"}',
    'Score: 85/100',
    '7',
    'It has 3 sentences.',
  ];
  for (const text of bad) {
    it(`${JSON.stringify(text)} is malformed`, () => {
      expect(parseJudgeScore(text)).toBeNull();
    });
  }

  it('honours another maxScore', () => {
    expect(parseJudgeScore('Score: 85/100', 100)).toEqual({ score: 85, via: 'prose' });
    expect(parseJudgeScore('{"score": 4}', 5)).toEqual({ score: 4, via: 'json' });
    expect(parseJudgeScore('{"score": 6}', 5)).toBeNull();
  });
});

describe('buildRubricMessages', () => {
  it('builds a system + user prompt with description, tagged examples, candidate and the JSON instruction', () => {
    const m = buildRubricMessages(
      { styleDescription: '鲁迅式的杂文：短句，冷峻，反讽。', examples: ['我家门前有两株树。', '其一是枣树，另一株也是枣树。'] },
      'The weather is nice today.',
    );
    expect(m.map((x) => x.role)).toEqual(['system', 'user']);
    const u = m[1]!.content;
    expect(u).toContain('鲁迅式的杂文');
    expect(u).toContain('<example index="1">\n我家门前有两株树。\n</example>');
    expect(u).toContain('<example index="2">');
    expect(u).toContain('<candidate>\nThe weather is nice today.\n</candidate>');
    expect(u).toContain('{"score": <integer from 0 to 10>}');
    expect(u.indexOf('<example index="1">')).toBeLessThan(u.indexOf('<candidate>'));
  });

  it('clips long texts by code points and validates the rubric', () => {
    const m = buildRubricMessages({ styleDescription: 'x', examples: ['好'.repeat(50)], maxChars: 10 }, '😀'.repeat(20));
    expect(m[1]!.content).toContain(`${'好'.repeat(10)} […]`);
    expect(m[1]!.content).toContain(`${'😀'.repeat(10)} […]`);
    expect(() => buildRubricMessages({ styleDescription: ' ', examples: ['a'] }, 'b')).toThrowError(LorafitEvalError);
    expect(() => buildRubricMessages({ styleDescription: 'x', examples: [] }, 'b')).toThrowError(/at least one true example/);
  });
});
