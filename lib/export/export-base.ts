// The base model an export refers to: a Hugging Face folder (config.json) or a GGUF file
// (a .gguf path or `ollama:NAME[:TAG]`, whose HF config comes from its metadata as transformers'
// GGUF loader builds it). The LoRA export needs its architecture and layer shapes; the Ollama
// Modelfile needs its file and chat template.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LorafitError } from '../errors.js';
import { planGgufModel } from '../gguf/plan.js';
import { metaString, readGguf } from '../gguf/reader.js';
import { isGgufFile, resolveModelSource } from '../model/model-source.js';
import { parseArchConfig, type ArchConfig } from './gguf-arch.js';
import { readModelConfig } from './gguf-model.js';

export interface ExportBase {
  format: 'hf' | 'gguf';
  /** The folder (hf) or the GGUF file (gguf; for `ollama:` specs, the blob). */
  path: string;
  /** The spec as given (`ollama:smollm2:135m`, a path, a hub id). */
  spec: string;
  /** Where the config came from, for messages: `<dir>/config.json` or the GGUF file. */
  configSource: string;
  config: Record<string, unknown>;
  arch: ArchConfig;
  /** The model's chat template (tokenizer_config.json / chat_template.jinja, or tokenizer.chat_template), null when it has none. */
  chatTemplate: string | null;
}

/** Reads a base model given by an explicit spec: folder, .gguf file, ollama:NAME[:TAG] or hub id. */
export async function openExportBase(spec: string): Promise<ExportBase> {
  const src = await resolveModelSource(spec);
  return src.format === 'gguf' ? ggufBase(src.path, spec) : hfBase(src.path, spec);
}

/**
 * The base an adapter names in `base_model_name_or_path`, when that is something local: a folder
 * with config.json, a GGUF file (as `lorafit train` records it: the resolved model path) or an
 * `ollama:` spec. Relative paths are tried from the working directory, the adapter folder and its
 * parent. undefined when none of these exists.
 */
export async function adapterBase(adapterDir: string, base: string | undefined | null): Promise<ExportBase | undefined> {
  if (!base) return undefined;
  if (base.startsWith('ollama:')) return ggufBase((await resolveModelSource(base)).path, base);
  const abs = resolve(adapterDir);
  for (const cand of [resolve(base), resolve(abs, base), resolve(dirname(abs), base)]) {
    if (!existsSync(cand)) continue;
    if (statSync(cand).isDirectory() && existsSync(join(cand, 'config.json'))) return hfBase(cand, base);
    if (isGgufFile(cand)) return ggufBase(cand, base);
  }
  return undefined;
}

function hfBase(dir: string, spec: string): ExportBase {
  const { config, arch } = readModelConfig(dir);
  return { format: 'hf', path: dir, spec, configSource: join(dir, 'config.json'), config, arch, chatTemplate: folderChatTemplate(dir) };
}

async function ggufBase(file: string, spec: string): Promise<ExportBase> {
  const header = await readGguf(file);
  // planGgufModel: the config exactly as Model.load builds it (rope factors included), and the
  // check that every tensor of the file is a weight of the architecture.
  const plan = await planGgufModel(header);
  const arch = parseArchConfig(plan.config, file);
  return { format: 'gguf', path: file, spec, configSource: file, config: plan.config, arch, chatTemplate: metaString(header, 'tokenizer.chat_template') ?? null };
}

function folderChatTemplate(dir: string): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const cfgFile = join(dir, 'tokenizer_config.json');
  if (!existsSync(cfgFile)) return null;
  try {
    const t = (JSON.parse(readFileSync(cfgFile, 'utf8')) as { chat_template?: unknown }).chat_template;
    if (typeof t === 'string') return t;
    // a list of named templates: the default one
    if (Array.isArray(t)) {
      const d = t.find((x: { name?: string }) => x?.name === 'default') as { template?: string } | undefined;
      return typeof d?.template === 'string' ? d.template : null;
    }
  } catch {
    // an unreadable tokenizer_config.json is the tokenizer's problem, not the export's
  }
  return null;
}

/**
 * The [out, in] shape of the base weight an adapted module replaces (`model.layers.3.self_attn.q_proj`),
 * or undefined for modules whose shape the config does not determine.
 */
export function baseLinearShape(module: string, a: ArchConfig): [number, number] | undefined {
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const h = a.hiddenSize;
  const inter = a.intermediateSize;
  const tail = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$/.exec(module)?.[1];
  switch (tail) {
    case 'q_proj': return [q, h];
    case 'k_proj':
    case 'v_proj': return [kv, h];
    case 'o_proj': return [h, q];
    case 'gate_proj':
    case 'up_proj': return [inter, h];
    case 'down_proj': return [h, inter];
  }
  if (module === 'lm_head') return [a.vocabSize, h];
  return undefined;
}
