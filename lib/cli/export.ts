// `lorafit export ollama --model M --adapter A --out DIR [--name NAME]`: the adapter as a llama.cpp
// LoRA GGUF (DIR/adapter.gguf) and an Ollama Modelfile (DIR/Modelfile) that puts it on the same
// base: FROM the base .gguf file (absolute path), the Ollama model itself for `ollama:NAME[:TAG]`,
// or, for a Hugging Face folder, the base exported next to it (DIR/model.gguf).
// `lorafit export gguf --model M [--adapter A] --out FILE [--dtype]`: one model GGUF, with the
// adapter merged in (PEFT's merge_and_unload, in float32) when one is given.
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { openExportBase, type ExportBase } from '../export/export-base.js';
import { exportGguf } from '../export/gguf-model.js';
import { exportLoraGguf } from '../export/gguf-lora.js';
import { detectChatFamily, writeModelfile } from '../export/ollama.js';
import type { GgmlDtype } from '../export/gguf-writer.js';
import { formatOllamaName, parseOllamaName } from '../gguf/ollama.js';
import { metaString, readGguf } from '../gguf/reader.js';
import { looksLikeHubId, resolveModelPath } from '../hub/resolve.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { Model } from '../model/model.js';
import { cliLogger, globalOptions, reportModelWarnings, type GlobalArgs } from './common.js';

export const command = 'export <target>';
export const describe = 'Export for llama.cpp / Ollama: `export ollama` (LoRA GGUF + Modelfile) or `export gguf` (a model GGUF)';

const MODEL_DTYPES: GgmlDtype[] = ['F16', 'BF16', 'F32', 'Q8_0'];

export function builder(y: Argv) {
  return globalOptions(y)
    .positional('target', { type: 'string', choices: ['ollama', 'gguf'], demandOption: true, describe: 'ollama: adapter GGUF + Modelfile; gguf: one model file' })
    .option('model', { type: 'string', demandOption: true, describe: 'Base model: a Hugging Face folder, a .gguf file, ollama:NAME[:TAG] or a hub id' })
    .option('adapter', { type: 'string', describe: 'PEFT adapter folder or hub id (required for ollama; merged into the model for gguf)' })
    .option('out', { type: 'string', demandOption: true, describe: 'ollama: output folder; gguf: output file' })
    .option('name', { type: 'string', describe: 'ollama: the model name for `ollama create` (default: from the adapter folder); gguf: general.name' })
    .option('dtype', {
      type: 'string',
      choices: MODEL_DTYPES,
      describe: 'Weight type of an exported model GGUF (gguf; ollama with a Hugging Face base): default F16',
    })
    .option('adapter-dtype', { type: 'string', choices: ['F32', 'F16', 'BF16'], default: 'F32', describe: 'ollama: tensor type of the LoRA GGUF' });
}

interface ExportArgs extends GlobalArgs {
  target: string;
  model: string;
  adapter?: string;
  out: string;
  name?: string;
  dtype?: string;
  adapterDtype: string;
}

export async function handler(argv: ExportArgs): Promise<void> {
  const log = cliLogger(argv, 'export');
  if (argv.target === 'ollama') await exportOllama(argv, log);
  else await exportModel(argv, log);
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** An adapter folder: local, else a hub id; E_EXPORT naming the path when it is neither. */
async function adapterFolder(spec: string): Promise<string> {
  const abs = resolve(spec);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) throw new LorafitError('E_EXPORT', `${abs}: an adapter is a folder (adapter_config.json + adapter_model.safetensors), not a file`);
    return abs;
  }
  if (!looksLikeHubId(spec)) throw new LorafitError('E_EXPORT', `${abs}: no such adapter folder`);
  try {
    return await resolveModelPath(spec);
  } catch (e) {
    throw new LorafitError('E_EXPORT', `${abs}: no such adapter folder, and '${spec}' is not a hub repo that can be had (${(e as Error).message})`, { cause: e });
  }
}

/** A name `ollama create` takes: lower case, [a-z0-9._-], from the adapter folder (its parent when it is called 'adapter'). */
export function defaultOllamaName(adapterDir: string): string {
  const abs = resolve(adapterDir);
  const base = basename(abs) === 'adapter' ? basename(dirname(abs)) : basename(abs);
  const name = base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[-._]+$/g, '');
  return name || 'lorafit-model';
}

function checkOllamaName(name: string): string {
  try {
    parseOllamaName(name);
  } catch (e) {
    throw new LorafitError('E_OPTION', `--name: ${(e as Error).message}`);
  }
  return name;
}

async function exportOllama(argv: ExportArgs, log: ReturnType<typeof cliLogger>): Promise<void> {
  if (argv.adapter === undefined) throw new LorafitError('E_OPTION', '--adapter is required for `export ollama` (to export a model alone, use `export gguf`)');
  const base = await openExportBase(argv.model);
  const adapterDir = await adapterFolder(argv.adapter);
  const name = checkOllamaName(argv.name ?? defaultOllamaName(adapterDir));
  const out = resolve(argv.out);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new LorafitError('E_OPTION', `--out ${out} is a file; export ollama writes a folder`);
  mkdirSync(out, { recursive: true });

  const loraFile = join(out, 'adapter.gguf');
  const lora = await exportLoraGguf(adapterDir, loraFile, { baseModel: base.path, dtype: argv.adapterDtype as 'F32' | 'F16' | 'BF16', name });
  say(`wrote ${loraFile}: LoRA r=${lora.rank} alpha ${lora.alpha} on ${lora.targets.length} ${lora.architecture} weights`);

  let from: string;
  let chatTemplate: string | null = base.chatTemplate;
  if (base.spec.startsWith('ollama:')) {
    // The Ollama model itself: `ollama create` reuses its layers, template and parameters.
    from = formatOllamaName(parseOllamaName(base.spec));
    chatTemplate = null;
  } else if (base.format === 'gguf') {
    from = base.path;
  } else {
    const modelFile = join(out, 'model.gguf');
    const dtype = (argv.dtype ?? 'F16') as GgmlDtype;
    const r = await exportGguf(base.path, modelFile, { dtype, name: basename(base.path) });
    say(`wrote ${modelFile}: the base model ${base.path} as GGUF (${dtype}, ${r.tensorCount} tensors)`);
    from = `./${relative(out, modelFile)}`;
  }
  const family = chatTemplate === null ? null : detectChatFamily(chatTemplate);
  if (chatTemplate !== null && family === null) {
    say(`note: the chat template is not ChatML, Llama 3 or Gemma; the Modelfile has no TEMPLATE (Ollama uses the one it derives from the GGUF)`);
  }
  const modelfile = join(out, 'Modelfile');
  await writeModelfile(modelfile, { from, adapter: './adapter.gguf', family: family ?? undefined });
  say(`wrote ${modelfile}: FROM ${from}, ADAPTER ./adapter.gguf${family ? `, ${family} TEMPLATE and stops` : ''}`);
  say('create the Ollama model with:');
  say(`  ollama create ${name} -f ${modelfile}`);
  log.info({ out, from, name, targets: lora.targets.length, family }, 'exported for ollama');
}

async function exportModel(argv: ExportArgs, log: ReturnType<typeof cliLogger>): Promise<void> {
  const base = await openExportBase(argv.model);
  const out = resolve(argv.out);
  if (existsSync(out) && statSync(out).isDirectory()) throw new LorafitError('E_OPTION', `--out ${out} is a folder; export gguf writes one .gguf file`);
  const dtype = (argv.dtype ?? 'F16') as GgmlDtype;
  const name = argv.name ?? (base.format === 'hf' ? basename(base.path) : basename(base.path).replace(/\.gguf$/i, ''));
  mkdirSync(dirname(out), { recursive: true });
  if (argv.adapter === undefined && base.format === 'hf') {
    const r = await exportGguf(base.path, out, { dtype, name });
    say(`wrote ${out}: ${r.architecture}, ${r.tensorCount} tensors, ${dtype}`);
    return;
  }
  // Through a Hugging Face folder: the GGUF base dequantized (and the adapter merged) in float32.
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`;
  const model = await Model.load(base.path, { dtype: 'float32' });
  const warned = reportModelWarnings(model, log);
  try {
    let modules = 0;
    if (argv.adapter !== undefined) {
      const adapter = await LoraAdapter.load(model, await adapterFolder(argv.adapter), { name: 'export' });
      modules = adapter.modules.length;
      await adapter.mergeAndUnload();
      reportModelWarnings(model, log, warned);
    }
    await model.save(tmp, { dtype: 'float32' });
    const r = await exportGguf(tmp, out, { dtype, name, pre: await ggufPre(base) });
    say(`wrote ${out}: ${r.architecture}, ${r.tensorCount} tensors, ${dtype}${modules ? `, ${modules} adapted modules of ${argv.adapter} merged` : ''}`);
    log.info({ out, dtype, modules }, 'exported gguf');
  } finally {
    await model.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The llama.cpp pre-tokenizer name a GGUF base records (its tokenizer.json cannot always say). */
async function ggufPre(base: ExportBase): Promise<string | undefined> {
  if (base.format !== 'gguf') return undefined;
  return metaString(await readGguf(base.path), 'tokenizer.ggml.pre');
}
