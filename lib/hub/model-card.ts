// README.md model card for pushed folders: YAML front matter the hub reads (base_model,
// library_name, tags, license) and a short usage section.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ModelCardOptions {
  /** Base model repo id; default: adapter_config.json's base_model_name_or_path. */
  baseModel?: string;
  /** SPDX-ish licence id as the hub spells it (apache-2.0, mit, llama3.1, other, ...). */
  license?: string;
  /** Overrides the library the hub shows usage for; default 'peft' for adapters, 'transformers' otherwise. */
  libraryName?: string;
  /** Extra tags (lora and lorafit are always there). */
  tags?: string[];
  /** A paragraph under the title. */
  description?: string;
  /** Dataset repo ids used for training. */
  datasets?: string[];
}

export interface FolderKind {
  adapter: boolean;
  baseModel?: string;
  rank?: number;
  alpha?: number;
  targetModules?: string[];
}

/** Reads adapter_config.json (PEFT) or config.json to describe what the folder is. */
export function describeFolder(folder: string): FolderKind {
  const adapterCfg = join(folder, 'adapter_config.json');
  if (existsSync(adapterCfg)) {
    try {
      const c = JSON.parse(readFileSync(adapterCfg, 'utf8')) as Record<string, unknown>;
      const kind: FolderKind = { adapter: true };
      if (typeof c.base_model_name_or_path === 'string' && c.base_model_name_or_path) kind.baseModel = c.base_model_name_or_path;
      if (typeof c.r === 'number') kind.rank = c.r;
      if (typeof c.lora_alpha === 'number') kind.alpha = c.lora_alpha;
      if (Array.isArray(c.target_modules)) kind.targetModules = c.target_modules.filter((t): t is string => typeof t === 'string');
      return kind;
    } catch {
      return { adapter: true };
    }
  }
  const kind: FolderKind = { adapter: false };
  try {
    const c = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
    const name = c._name_or_path;
    // A merged model's config keeps the base model's id in _name_or_path when it was a hub id.
    if (typeof name === 'string' && /^[\w.-]+\/[\w.-]+$/.test(name)) kind.baseModel = name;
  } catch {
    /* no config: still a valid upload */
  }
  return kind;
}

/** YAML scalar: plain when safe, else a JSON string (valid YAML double-quoted scalar). */
function yamlScalar(s: string): string {
  return /^[A-Za-z0-9][\w./-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s) ? s : JSON.stringify(s);
}

function yamlList(key: string, items: readonly string[]): string {
  return `${key}:\n${items.map((i) => `- ${yamlScalar(i)}`).join('\n')}`;
}

/** The README.md text for `folder` pushed as `repoId`. */
export function buildModelCard(folder: string, repoId: string, opts: ModelCardOptions = {}): string {
  const kind = describeFolder(folder);
  const baseModel = opts.baseModel ?? kind.baseModel;
  const library = opts.libraryName ?? (kind.adapter ? 'peft' : 'transformers');
  const tags = [...new Set(['lora', 'lorafit', ...(kind.adapter ? ['peft'] : []), ...(opts.tags ?? [])])];

  const front: string[] = [];
  if (baseModel) front.push(`base_model: ${yamlScalar(baseModel)}`);
  front.push(`library_name: ${yamlScalar(library)}`);
  if (opts.license) front.push(`license: ${yamlScalar(opts.license)}`);
  if (opts.datasets?.length) front.push(yamlList('datasets', opts.datasets));
  front.push(yamlList('tags', tags));
  if (kind.adapter || baseModel) front.push('pipeline_tag: text-generation');

  const name = repoId.split('/').pop() ?? repoId;
  const lines: string[] = ['---', ...front, '---', '', `# ${name}`, ''];
  if (opts.description) lines.push(opts.description.trim(), '');
  if (kind.adapter) {
    const details = [
      baseModel ? `base model [${baseModel}](https://huggingface.co/${baseModel})` : undefined,
      kind.rank !== undefined ? `rank ${kind.rank}` : undefined,
      kind.alpha !== undefined ? `alpha ${kind.alpha}` : undefined,
      kind.targetModules?.length ? `target modules ${kind.targetModules.map((t) => `\`${t}\``).join(', ')}` : undefined,
    ].filter(Boolean);
    lines.push(`A LoRA adapter (PEFT format) trained with [lorafit](https://www.npmjs.com/package/lorafit)${details.length ? `: ${details.join(', ')}` : ''}.`, '');
    lines.push('## Use with PEFT', '', '```python', 'from peft import AutoPeftModelForCausalLM', '', `model = AutoPeftModelForCausalLM.from_pretrained(${JSON.stringify(repoId)})`, '```', '');
  } else {
    lines.push(
      `A model fine-tuned with LoRA by [lorafit](https://www.npmjs.com/package/lorafit)${baseModel ? ` from [${baseModel}](https://huggingface.co/${baseModel})` : ''}, adapters merged into the weights.`,
      '',
      '## Use with transformers',
      '',
      '```python',
      'from transformers import AutoModelForCausalLM, AutoTokenizer',
      '',
      `model = AutoModelForCausalLM.from_pretrained(${JSON.stringify(repoId)})`,
      `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(repoId)})`,
      '```',
      '',
    );
  }
  return lines.join('\n');
}
