// Shared pieces of the CLI commands: global flags, logging to a file, error reporting, loading a
// model (+ tokenizer, + adapters) from a folder or hub id.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { resolveModelPath } from '../hub/index.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { loadModelAndTokenizer } from '../model/chat.js';
import type { Model, Dtype, ModelLoadOptions } from '../model/model.js';
import { resolveModelSource } from '../model/model-source.js';
import type { Tokenizer } from '../text/tokenizer.js';

export interface GlobalArgs {
  verbose?: boolean;
  logFile?: string;
}

/** The flags of every command. */
export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('verbose', { type: 'boolean', default: false, describe: 'Debug logging and stack traces on errors' })
    .option('log-file', { type: 'string', describe: 'Write JSON logs (pino) to this file' });
}

/** pino JSON logs to --log-file (synchronous writes, nothing lost on exit); silent without one. */
export function cliLogger(args: GlobalArgs, command: string): Logger {
  const level = args.verbose ? 'debug' : 'info';
  if (!args.logFile) return pino({ level: 'silent' });
  return pino({ level, base: { lib: 'lorafit', command } }, pino.destination({ dest: resolve(args.logFile), mkdir: true, sync: true }));
}

/**
 * A logger for the data pipeline's warnings (each row skipped with --skip-invalid as
 * `file:line: message`, then the count): printed to stderr as `warning: ...` and logged at warn.
 */
export function warningPrinter(log: Logger, out: NodeJS.WritableStream = process.stderr): { warn(obj: object, msg: string): void } {
  return {
    warn(obj: object, msg: string) {
      out.write(`warning: ${msg}\n`);
      log.warn(obj, msg);
    },
  };
}

/** Errors that carry a stable code (LorafitError and the data/eval/hub error classes). */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code) ? code : undefined;
}

/** Prints an error as `error [CODE]: message` (stack only with --verbose); returns the exit code. */
export function reportError(e: unknown, verbose: boolean, out: NodeJS.WritableStream = process.stderr): number {
  const code = errorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  out.write(code ? `error [${code}]: ${message}\n` : `error: ${message}\n`);
  if (verbose && e instanceof Error && e.stack) out.write(`${e.stack}\n`);
  else if (!code) out.write('(run with --verbose for the stack trace)\n');
  return 1;
}

export function modelOptions<T>(y: Argv<T>) {
  return y
    .option('dtype', { type: 'string', choices: ['float32', 'bfloat16', 'float16'], describe: 'Compute dtype of the base weights (default float32)' })
    .option('device', { type: 'string', describe: "'cpu' (default), 'cuda' or 'cuda:N'" })
    .option('threads', { type: 'number', describe: 'libtorch threads (default: all cores)' })
    .option('load-in-4bit', { type: 'boolean', describe: 'QLoRA: 4-bit NF4 base weights' })
    .option('load-in-8bit', { type: 'boolean', describe: '8-bit base weights' });
}

export interface ModelArgs {
  dtype?: string;
  device?: string;
  threads?: number;
  loadIn4bit?: boolean;
  loadIn8bit?: boolean;
}

/** Model.load options from the flags; quantize is passed through and validated by Model.load. */
export function loadOptions(args: ModelArgs): ModelLoadOptions & { quantize?: 'nf4' | 'int8' } {
  if (args.loadIn4bit && args.loadIn8bit) throw new LorafitError('E_OPTION', '--load-in-4bit and --load-in-8bit exclude each other');
  const o: ModelLoadOptions & { quantize?: 'nf4' | 'int8' } = {};
  if (args.dtype !== undefined) o.dtype = args.dtype as Dtype;
  if (args.device !== undefined) o.device = args.device;
  if (args.threads !== undefined) o.threads = args.threads;
  if (args.loadIn4bit) o.quantize = 'nf4';
  if (args.loadIn8bit) o.quantize = 'int8';
  return o;
}

/** A model spec (folder, .gguf file, ollama:NAME[:TAG], hub id) as a local folder or GGUF file. */
export async function modelDir(spec: string): Promise<string> {
  return (await resolveModelSource(spec)).path;
}

/** The name a model is served and reported under: a hub id as given, a folder's base name. */
export function modelName(idOrDir: string): string {
  return existsSync(idOrDir) ? basename(resolve(idOrDir)) : idOrDir;
}

export async function openModel(spec: string, args: ModelArgs, log?: Logger): Promise<{ model: Model; tokenizer: Tokenizer; dir: string }> {
  // An empty --model gets the resolver's message (it lists every kind of model spec).
  if (!spec) await resolveModelSource(spec);
  const loaded = await loadModelAndTokenizer(spec, { ...loadOptions(args), logger: log });
  reportModelWarnings(loaded.model, log);
  return loaded;
}

/**
 * Prints the model's warnings from index `from` on (unused checkpoint tensors at load, a merge
 * into a quantized base, ...) to stderr as `warning: ...` and logs each at warn; returns how many
 * warnings the model has now (the `from` of the next call).
 */
export function reportModelWarnings(model: Model, log?: Logger, from = 0, out: NodeJS.WritableStream = process.stderr): number {
  const all = model.warnings;
  for (let i = from; i < all.length; i++) {
    out.write(`warning: ${all[i]}\n`);
    log?.warn({ warning: all[i] }, all[i]);
  }
  return all.length;
}

export interface AdapterSpec {
  name: string;
  dir: string;
}

/** `name=dir` or `dir` (named after the folder). */
export function parseAdapterSpecs(values: string | string[] | undefined): AdapterSpec[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  const specs = list.map((v) => {
    const eq = v.indexOf('=');
    if (eq > 0 && !existsSync(v)) return { name: v.slice(0, eq), dir: v.slice(eq + 1) };
    const abs = resolve(v);
    const base = basename(abs);
    return { name: base === 'adapter' ? basename(resolve(abs, '..')) || 'adapter' : base, dir: v };
  });
  const seen = new Set<string>();
  for (const s of specs) {
    if (!/^[A-Za-z0-9_.-]+$/.test(s.name)) throw new LorafitError('E_OPTION', `adapter name '${s.name}' may hold only letters, digits, '_', '.', '-' (use --adapter name=dir)`);
    if (seen.has(s.name)) throw new LorafitError('E_OPTION', `two adapters are named '${s.name}'; use --adapter name=dir`);
    seen.add(s.name);
  }
  return specs;
}

/** Loads adapter folders (local or hub ids) onto the model, none active. */
export async function loadAdapters(model: Model, specs: AdapterSpec[], log?: Logger): Promise<Map<string, LoraAdapter>> {
  const out = new Map<string, LoraAdapter>();
  for (const s of specs) {
    const dir = await resolveModelPath(s.dir);  // a folder, or a hub id downloaded into the HF cache
    out.set(s.name, await LoraAdapter.load(model, dir, { name: s.name, activate: false }));
    log?.info({ name: s.name, dir }, 'adapter loaded');
  }
  return out;
}

/** Generation flags shared by chat, generate, eval and serve. */
export function generationOptions<T>(y: Argv<T>) {
  return y
    .option('max-new-tokens', { type: 'number', default: 128, describe: 'Most new tokens per answer' })
    .option('temperature', { type: 'number', describe: 'Sampling temperature; 0 = greedy (default: greedy)' })
    .option('top-p', { type: 'number', describe: 'Nucleus sampling' })
    .option('top-k', { type: 'number', describe: 'Top-k sampling' })
    .option('repetition-penalty', { type: 'number', describe: 'HF repetition penalty (1 = none)' })
    .option('seed', { type: 'number', describe: 'Sampling seed' })
    .option('stop', { type: 'string', array: true, describe: 'Stop strings' });
}

export interface GenerationArgs {
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
}

export function samplingFromArgs(a: GenerationArgs) {
  const sample = a.temperature !== undefined && a.temperature > 0;
  return {
    maxNewTokens: a.maxNewTokens,
    doSample: sample || (a.temperature === undefined && (a.topP !== undefined || a.topK !== undefined)),
    temperature: sample ? a.temperature : undefined,
    topP: a.topP,
    topK: a.topK,
    repetitionPenalty: a.repetitionPenalty,
    seed: a.seed,
    stop: a.stop,
  };
}
