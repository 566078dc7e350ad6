// The job `lorafit train` runs with no --model and no --dataset (and `npm run demo`): LoRA-tune the
// default model (SmolLM2-135M-Instruct, lib/model/default-model.ts) to answer in Yoda's style, on the
// Yoda lines shipped in examples/data/styles (Yoda-style rewrites of databricks-dolly-15k
// answers; see examples/data/README.md for source and license).
//
// The lines are answers without their questions, so each becomes a chat whose user turn is one of
// a few generic requests and whose assistant turn is the line; the loss is on the answer (and its
// end-of-turn token) only. The questions asked before and after training are not among them.
import { join } from 'node:path';
import type { ConversationRecord, DataRecord } from '../data/formats.js';
import { packageRoot } from '../model/native.js';

export function defaultJobDataset(): string {
  return join(packageRoot(), 'examples', 'data', 'styles', 'yoda.txt');
}

/** Asked of the base and the tuned model after training; never seen in training. */
export const DEFAULT_JOB_QUESTIONS: readonly string[] = [
  'What is the moon?',
  'How do plants grow?',
  'Why do people need sleep?',
];

/** Generic user turns paired with answer-only style lines (round robin); the examples use them too. */
export const STYLE_REQUESTS: readonly string[] = [
  'Tell me something interesting.',
  'Share a fact with me.',
  'Explain something you know.',
  'What can you tell me?',
  'Teach me something.',
  'Give me a short answer about anything.',
];

/**
 * Training settings of the default job on SmolLM2 (measured on 2 cores: see the README). Keys the
 * user sets (flags or config file) win over these.
 */
export const DEFAULT_JOB_SETTINGS = {
  // bf16 base weights (LoRA weights, gradients and AdamW state stay fp32): faster than fp32 on
  // both CPUs measured here (examples/README.md, bench/results), with the same held-out NLL drop.
  dtype: 'bfloat16',
  maxSteps: 60,
  batchSize: 4,
  learningRate: 2e-3,
  lrScheduler: 'cosine',
  warmupSteps: 5,
  loraRank: 16,
  loraAlpha: 32,
  targetModules: ['all-linear'],
  maxSeqLength: 128,
  evalSplit: 32,
  limit: 600,
  samplePrompts: [...DEFAULT_JOB_QUESTIONS],
} as const;

/** One line of a style file per answer, each paired with a generic request (round robin). */
export function styleConversations(records: DataRecord[]): ConversationRecord[] {
  return records.map((r, i) => {
    if (r.kind !== 'text') return r;
    return {
      kind: 'conversation',
      messages: [
        { role: 'user', content: STYLE_REQUESTS[i % STYLE_REQUESTS.length] },
        { role: 'assistant', content: r.text.replaceAll('\\n', '\n').trim() },
      ],
      source: r.source,
    };
  });
}
