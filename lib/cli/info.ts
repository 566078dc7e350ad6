// `lorafit info <model> [--adapter dir]`: architecture, parameter counts (from the safetensors
// headers, without loading weights), tokenizer, and an adapter's config with its trainable share.
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { LorafitError } from '../errors.js';
import { ggufToHfConfig } from '../gguf/hf-config.js';
import { metaString, readGguf } from '../gguf/reader.js';
import { resolveModelPath } from '../hub/index.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../lora/lora-adapter.js';
import { resolveModelSource } from '../model/model-source.js';
import { Tokenizer } from '../text/tokenizer.js';
import { globalOptions, type GlobalArgs } from './common.js';

export const command = 'info <model>';
export const describe = 'Show a model (and adapter): architecture, parameter counts, trainable share';

export function builder(y: Argv) {
  return globalOptions(y)
    .positional('model', { type: 'string', demandOption: true, describe: 'Model folder, .gguf file, ollama:NAME[:TAG] or hub id' })
    .option('adapter', { type: 'string', describe: 'PEFT adapter folder or hub id' })
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON' });
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
}

/** Tensor names, dtypes and shapes of a safetensors file, reading only its header. */
export function readSafetensorsHeader(file: string): Map<string, HeaderEntry> {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new LorafitError('E_SAFETENSORS', `${file}: truncated`);
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100 * 1024 * 1024) throw new LorafitError('E_SAFETENSORS', `${file}: header of ${n} bytes is not plausible`);
    const buf = Buffer.alloc(n);
    if (readSync(fd, buf, 0, n, 8) !== n) throw new LorafitError('E_SAFETENSORS', `${file}: truncated header`);
    const json = JSON.parse(buf.toString('utf8')) as Record<string, HeaderEntry>;
    const out = new Map<string, HeaderEntry>();
    for (const [k, v] of Object.entries(json)) if (k !== '__metadata__') out.set(k, v);
    return out;
  } finally {
    closeSync(fd);
  }
}

function weightFiles(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    return [...new Set(Object.values(map))].map((f) => join(dir, f));
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors') && f !== ADAPTER_WEIGHTS);
  if (files.length === 0) throw new LorafitError('E_MODEL_DIR', `${dir}: no *.safetensors weights`);
  return files.map((f) => join(dir, f));
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export interface ModelInfo {
  dir: string;
  architecture: string;
  modelType: string;
  config: Record<string, unknown>;
  parameters: number;
  dtypes: Record<string, number>;
  tokenizer: { vocabSize: number; chatTemplate: 'own' | 'chatml-fallback'; eos: string | null; endOfTurn: string | null } | null;
  adapter?: {
    dir: string;
    config: Record<string, unknown>;
    trainable: number;
    /** trainable / (base + trainable) * 100 */
    percent: number;
    modules: number;
  };
}

/** A GGUF file: the HF config transformers would make of it, parameters and types from the tensor table. */
async function ggufInfo(file: string): Promise<ModelInfo> {
  const header = await readGguf(file);
  const { config } = ggufToHfConfig(header);
  let parameters = 0;
  const dtypes: Record<string, number> = {};
  for (const t of header.tensors) {
    parameters += count(t.shape);
    dtypes[t.typeName] = (dtypes[t.typeName] ?? 0) + count(t.shape);
  }
  const tok = await Tokenizer.load(file);
  return {
    dir: file,
    architecture: `GGUF ${metaString(header, 'general.architecture')} (${metaString(header, 'general.name') ?? 'unnamed'})`,
    modelType: String(config.model_type),
    config,
    parameters,
    dtypes,
    tokenizer: { vocabSize: tok.vocabSize, chatTemplate: tok.usesFallbackChatTemplate ? 'chatml-fallback' : 'own', eos: tok.eosToken, endOfTurn: tok.endOfTurn },
  };
}

export async function modelInfo(model: string, adapter?: string): Promise<ModelInfo> {
  const source = await resolveModelSource(model);
  const dir = source.path;
  const info = source.format === 'gguf' ? await ggufInfo(dir) : await folderInfo(dir);
  if (adapter) info.adapter = adapterInfo(await resolveModelPath(adapter), info.parameters);
  return info;
}

async function folderInfo(dir: string): Promise<ModelInfo> {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new LorafitError('E_MODEL_DIR', `${dir}: no config.json (is this a Hugging Face model folder?)`);
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  let parameters = 0;
  const dtypes: Record<string, number> = {};
  for (const f of weightFiles(dir)) {
    for (const t of readSafetensorsHeader(f).values()) {
      parameters += count(t.shape);
      dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + count(t.shape);
    }
  }
  let tokenizer: ModelInfo['tokenizer'] = null;
  if (existsSync(join(dir, 'tokenizer.json'))) {
    const tok = await Tokenizer.fromDir(dir);
    tokenizer = { vocabSize: tok.vocabSize, chatTemplate: tok.usesFallbackChatTemplate ? 'chatml-fallback' : 'own', eos: tok.eosToken, endOfTurn: tok.endOfTurn };
  }
  return {
    dir,
    architecture: (config.architectures as string[] | undefined)?.[0] ?? 'unknown',
    modelType: String(config.model_type ?? 'unknown'),
    config,
    parameters,
    dtypes,
    tokenizer,
  };
}

function adapterInfo(adir: string, parameters: number): NonNullable<ModelInfo['adapter']> {
  const cfgFile = join(adir, ADAPTER_CONFIG);
  if (!existsSync(cfgFile)) throw new LorafitError('E_ADAPTER', `${adir}: no ${ADAPTER_CONFIG} (is this a PEFT adapter folder?)`);
  const acfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  const tensors = readSafetensorsHeader(join(adir, ADAPTER_WEIGHTS));
  let trainable = 0;
  const modules = new Set<string>();
  for (const [k, t] of tensors) {
    trainable += count(t.shape);
    if (!/\.(?:lora_[AB](\.[^.]+)?\.weight|lora_magnitude_vector)$/.test(k)) continue;  // a modules_to_save copy: not a LoRA module
    modules.add(k.replace(/\.(?:lora_[AB](\.[^.]+)?\.weight|lora_magnitude_vector)$/, ''));
  }
  return { dir: adir, config: acfg, trainable, percent: (100 * trainable) / (parameters + trainable), modules: modules.size };
}

interface InfoArgs extends GlobalArgs {
  model: string;
  adapter?: string;
  json?: boolean;
}

export async function handler(argv: InfoArgs): Promise<void> {
  const info = await modelInfo(argv.model, argv.adapter);
  if (argv.json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return;
  }
  const c = info.config;
  const lines = [
    `model:        ${info.dir}`,
    `architecture: ${info.architecture} (${info.modelType})`,
    `layers:       ${c.num_hidden_layers}, hidden ${c.hidden_size}, intermediate ${c.intermediate_size}, heads ${c.num_attention_heads} (kv ${c.num_key_value_heads ?? c.num_attention_heads})`,
    `vocab:        ${c.vocab_size}, context ${c.max_position_embeddings}, tied embeddings ${c.tie_word_embeddings ?? 'default'}`,
    `parameters:   ${info.parameters} (${human(info.parameters)}) stored as ${Object.entries(info.dtypes).map(([d, n]) => `${d} ${human(n)}`).join(', ')}`,
    info.tokenizer
      ? `tokenizer:    vocab ${info.tokenizer.vocabSize}, eos ${JSON.stringify(info.tokenizer.eos)}, end of turn ${JSON.stringify(info.tokenizer.endOfTurn)}, chat template ${info.tokenizer.chatTemplate}`
      : 'tokenizer:    none (no tokenizer.json)',
  ];
  if (info.adapter) {
    const a = info.adapter.config;
    lines.push(
      `adapter:      ${info.adapter.dir}`,
      `  r ${a.r}, lora_alpha ${a.lora_alpha}, dropout ${a.lora_dropout ?? 0}, rslora ${a.use_rslora ?? false}, dora ${a.use_dora ?? false}, init ${JSON.stringify(a.init_lora_weights ?? true)}, target_modules ${JSON.stringify(a.target_modules)}${a.modules_to_save ? `, modules_to_save ${JSON.stringify(a.modules_to_save)}` : ''}`,
      `  ${info.adapter.modules} modules, trainable parameters ${info.adapter.trainable} (${human(info.adapter.trainable)}) = ${info.adapter.percent.toFixed(4)}% of ${info.parameters + info.adapter.trainable}`,
      `  base_model_name_or_path ${JSON.stringify(a.base_model_name_or_path ?? null)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
