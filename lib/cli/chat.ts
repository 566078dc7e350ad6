// `lorafit chat --model M [--adapter name=dir ...]`: an interactive conversation, answers streamed.
// Commands: /adapter <name|none> switches the adapter (the history stays), /adapters lists them,
// /reset clears the history, /system <text> sets the system message, /exit (or Ctrl-D) ends.
// Reads lines from stdin, so a script can pipe a conversation in.
import { createInterface } from 'node:readline';
import type { Argv } from 'yargs';
import { chatStream, type ChatMessage, type GenerationStats } from '../model/chat.js';
import {
  cliLogger,
  errorCode,
  generationOptions,
  globalOptions,
  loadAdapters,
  modelOptions,
  openModel,
  parseAdapterSpecs,
  samplingFromArgs,
  type GenerationArgs,
  type GlobalArgs,
  type ModelArgs,
} from './common.js';

export const command = 'chat';
export const describe = 'Chat interactively (streaming; /adapter <name|none>, /reset, /exit)';

export function builder(y: Argv) {
  return generationOptions(modelOptions(globalOptions(y)))
    .option('model', { type: 'string', demandOption: true, describe: 'Model folder or hub id' })
    .option('adapter', { type: 'string', array: true, describe: 'Adapter folders (name=dir or dir); the last one starts active' })
    .option('system', { type: 'string', describe: 'System message' });
}

interface ChatArgs extends GlobalArgs, ModelArgs, GenerationArgs {
  model: string;
  adapter?: string[];
  system?: string;
}

const HELP = 'commands: /adapter <name|none>, /adapters, /reset, /system <text>, /exit';

export async function handler(argv: ChatArgs): Promise<void> {
  const log = cliLogger(argv, 'chat');
  const specs = parseAdapterSpecs(argv.adapter);
  const { model, tokenizer } = await openModel(argv.model, argv, log);
  const out = process.stdout;
  const tty = Boolean(process.stdin.isTTY && out.isTTY);
  try {
    const adapters = await loadAdapters(model, specs, log);
    let active: string | null = specs.length ? specs[specs.length - 1].name : null;
    let system = argv.system;
    let history: ChatMessage[] = [];
    const sampling = samplingFromArgs(argv);
    const label = () => (active ? `[${active}]` : '[base]');
    out.write(`chatting with ${argv.model} ${label()}; ${HELP}\n`);

    const rl = createInterface({ input: process.stdin, output: tty ? out : undefined, terminal: tty });
    const prompt = () => {
      if (!tty) return;
      rl.setPrompt(`${label()} > `);
      rl.prompt();
    };
    // Ctrl-C while answering stops the answer; at the prompt it ends the session.
    let current: AbortController | null = null;
    rl.on('SIGINT', () => {
      if (current) current.abort();
      else rl.close();
    });
    prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      if (!line) {
        prompt();
        continue;
      }
      if (line.startsWith('/')) {
        const [cmd, ...rest] = line.slice(1).split(/\s+/);
        const arg = rest.join(' ');
        if (cmd === 'exit' || cmd === 'quit') break;
        if (cmd === 'reset') {
          history = [];
          out.write('history cleared\n');
        } else if (cmd === 'adapter') {
          if (arg === 'none' || arg === 'base') active = null;
          else if (adapters.has(arg)) active = arg;
          else out.write(`no adapter named '${arg}'; loaded: ${[...adapters.keys()].join(', ') || 'none'}\n`);
          out.write(`using ${active ?? 'the base model'}\n`);
        } else if (cmd === 'adapters') {
          out.write(`adapters: ${[...adapters.keys()].join(', ') || 'none'}; active: ${active ?? 'none'}\n`);
        } else if (cmd === 'system') {
          system = arg || undefined;
          out.write(system ? 'system message set\n' : 'system message cleared\n');
        } else {
          out.write(`${HELP}\n`);
        }
        prompt();
        continue;
      }
      history.push({ role: 'user', content: line });
      const messages = system ? [{ role: 'system', content: system }, ...history] : history;
      const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
      current = new AbortController();
      let answer = '';
      try {
        if (!tty) out.write(`${label()} `);
        for await (const piece of chatStream(model, tokenizer, messages, { ...sampling, adapter: active, signal: current.signal }, stats)) {
          answer += piece;
          out.write(piece);
        }
        out.write('\n');
      } catch (e) {
        if (errorCode(e) !== 'E_ABORTED') throw e;
        out.write(' [stopped]\n');
      } finally {
        current = null;
      }
      history.push({ role: 'assistant', content: answer });
      log.info({ adapter: active, ...stats }, 'answer');
      prompt();
    }
    rl.close();
  } finally {
    await model.dispose();
  }
}
