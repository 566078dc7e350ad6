import { describe, expect, it } from 'vitest';
import * as evalApi from '../../lib/eval/index.js';

describe('lib/eval public entry point', () => {
  it('exports the documented API and it works end to end on one example', () => {
    for (const name of [
      'exactMatch', 'tokenF1', 'f1EmCorpus', 'rouge', 'rougeCorpus', 'corpusBleu', 'sentenceBleu',
      'PerplexityAccumulator', 'styleProfile', 'styleDistance', 'compareStyle', 'JudgeClient',
      'judgeWithControls', 'parseJudgeScore', 'writeAbTest', 'scoreAbFiles', 'renderLossCurveSvg',
      'renderMarkdownReport', 'renderHtmlReport', 'writeReport', 'LorafitEvalError',
    ]) {
      expect(typeof (evalApi as Record<string, unknown>)[name], name).toBe('function');
    }
    // sacrebleu README example through the barrel export
    const refs = [
      ['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'],
      ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.'],
    ];
    const hyps = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.'];
    expect(evalApi.corpusBleu(hyps, refs).score).toBeCloseTo(48.530827, 5);
  });
});
