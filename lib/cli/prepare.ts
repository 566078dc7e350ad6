// `lorafit prepare markdown <dir> --out <dir>`: a writing-style SFT corpus from a folder of
// Markdown posts (sft_train.jsonl, sft_val.jsonl, dataset_stats.json; see data/markdown-corpus.ts).
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { buildMarkdownCorpus, type StyleTask } from '../data/markdown-corpus.js';
import { LorafitError } from '../errors.js';
import { Tokenizer } from '../text/tokenizer.js';
import { cliLogger, globalOptions, modelDir, type GlobalArgs } from './common.js';

export const command = 'prepare <kind> <dir>';
export const describe = 'Build a training set: `prepare markdown <dir> --out <dir>`';

const TASKS: StyleTask[] = ['rewrite', 'continue', 'expand'];

export function builder(y: Argv) {
  return globalOptions(y)
    .positional('kind', { type: 'string', choices: ['markdown'], demandOption: true, describe: 'What to prepare' })
    .positional('dir', { type: 'string', demandOption: true, describe: 'Folder of .md posts (searched recursively)' })
    .option('out', { alias: 'output-dir', type: 'string', demandOption: true, describe: 'Output folder (--output-dir is the same)' })
    .option('author', { type: 'string', describe: 'Author named in the instructions (default: front matter, else "the author")' })
    .option('model', { type: 'string', describe: "Count tokens with this model's tokenizer (default: an estimate)" })
    .option('min-tokens', { type: 'number', default: 300, describe: 'Shortest chunk' })
    .option('max-tokens', { type: 'number', default: 800, describe: 'Longest chunk' })
    .option('val-ratio', { type: 'number', default: 0.1, describe: 'Share of posts held out for validation' })
    .option('seed', { type: 'number', default: 42, describe: 'Seed of the post split' })
    .option('tasks', { type: 'string', array: true, describe: `Tasks per chunk (${TASKS.join(', ')}; default all)` })
    .option('system-prompt', { type: 'boolean', default: true, describe: 'Add a system message naming the author (--no-system-prompt leaves it out)' });
}

interface PrepareArgs extends GlobalArgs {
  kind: string;
  dir: string;
  out: string;
  author?: string;
  model?: string;
  minTokens: number;
  maxTokens: number;
  valRatio: number;
  seed: number;
  tasks?: string[];
  systemPrompt?: boolean;
}

export async function handler(argv: PrepareArgs): Promise<void> {
  const log = cliLogger(argv, 'prepare');
  const tasks = argv.tasks?.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  for (const t of tasks ?? []) {
    if (!TASKS.includes(t as StyleTask)) throw new LorafitError('E_OPTION', `--tasks: '${t}' is not one of ${TASKS.join(', ')}`);
  }
  const tokenizer = argv.model ? await Tokenizer.fromDir(await modelDir(argv.model)) : undefined;
  const outputDir = resolve(argv.out);
  const stats = await buildMarkdownCorpus({
    inputDir: resolve(argv.dir),
    outputDir,
    author: argv.author,
    tokenizer,
    minTokens: argv.minTokens,
    maxTokens: argv.maxTokens,
    valRatio: argv.valRatio,
    seed: argv.seed,
    tasks: tasks as StyleTask[] | undefined,
    systemPrompt: argv.systemPrompt ?? true,
  });
  log.info({ stats }, 'prepared');
  const c = stats.chunkTokens;
  process.stdout.write(
    [
      `${stats.posts} posts (${Object.entries(stats.languages).map(([l, n]) => `${l} ${n}`).join(', ')}), ${stats.chunks} chunks of ${c.min}-${c.max} tokens (mean ${c.mean}, ${stats.tokenCounter})`,
      `records: ${stats.records.train} train, ${stats.records.val} val (${stats.valPosts.length} held-out posts)${stats.droppedShortChunks ? `; ${stats.droppedShortChunks} short chunks dropped` : ''}`,
      `wrote ${outputDir}/sft_train.jsonl, sft_val.jsonl, dataset_stats.json`,
    ].join('\n') + '\n',
  );
}
