// `lorafit generate --model M [--adapter A] --prompt "..." [--chat]`: one completion, streamed to
// stdout. `--chat` wraps the prompt as a user message and applies the chat template.
import type { Argv } from 'yargs';
import { chatStream, completionStream, type GenerationStats } from '../model/chat.js';
import { LorafitError } from '../errors.js';
import { cliLogger, generationOptions, globalOptions, loadAdapters, modelOptions, openModel, parseAdapterSpecs, samplingFromArgs, type GenerationArgs, type GlobalArgs, type ModelArgs } from './common.js';

export const command = 'generate';
export const describe = 'Generate one completion (streamed)';

export function builder(y: Argv) {
  return generationOptions(modelOptions(globalOptions(y)))
    .option('model', { type: 'string', demandOption: true, describe: 'Model folder or hub id' })
    .option('adapter', { type: 'string', array: true, describe: 'Adapter folder (or name=dir); the last one is used' })
    .option('prompt', { type: 'string', demandOption: true, describe: "Prompt text ('-' reads stdin)" })
    .option('chat', { type: 'boolean', default: false, describe: 'Treat the prompt as a user message and apply the chat template' })
    .option('system', { type: 'string', describe: 'System message (with --chat)' });
}

interface GenerateArgs extends GlobalArgs, ModelArgs, GenerationArgs {
  model: string;
  adapter?: string[];
  prompt: string;
  chat: boolean;
  system?: string;
}

export async function handler(argv: GenerateArgs): Promise<void> {
  const log = cliLogger(argv, 'generate');
  const prompt = argv.prompt === '-' ? await readStdin() : argv.prompt;
  if (!prompt) throw new LorafitError('E_OPTION', '--prompt is empty');
  const specs = parseAdapterSpecs(argv.adapter);
  const { model, tokenizer } = await openModel(argv.model, argv, log);
  try {
    const adapters = await loadAdapters(model, specs, log);
    const adapter = specs.length ? specs[specs.length - 1].name : null;
    const options = { ...samplingFromArgs(argv), adapter };
    const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
    const stream = argv.chat
      ? chatStream(model, tokenizer, [...(argv.system ? [{ role: 'system', content: argv.system }] : []), { role: 'user', content: prompt }], options, stats)
      : completionStream(model, tokenizer, await tokenizer.encode(prompt), options, stats);
    if (!argv.chat) process.stdout.write(prompt);
    for await (const piece of stream) process.stdout.write(piece);
    process.stdout.write('\n');
    log.info({ ...stats, adapter, adapters: [...adapters.keys()] }, 'generated');
    process.stderr.write(`[${stats.completionTokens} tokens, finish: ${stats.finishReason}${adapter ? `, adapter ${adapter}` : ''}]\n`);
  } finally {
    await model.dispose();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
