// Ollama Modelfiles for exported GGUF files: FROM (and ADAPTER for a LoRA GGUF), a TEMPLATE in
// Ollama's Go-template syntax translated from the HF chat template for the common families
// (ChatML/Qwen, Llama 3, Gemma), PARAMETER stop for each end-of-turn marker, and SYSTEM.
import { LorafitError } from '../errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

export type ChatFamily = 'chatml' | 'llama3' | 'gemma';

export interface ModelfileOptions {
  /** Path (relative to the Modelfile's folder, or absolute) of the model GGUF, or an Ollama model name. */
  from: string;
  /** Path of a LoRA adapter GGUF applied on top of `from` (the ADAPTER line). */
  adapter?: string;
  /** The HF chat template (Jinja) to translate; its family is detected from its markers. */
  chatTemplate?: string | null;
  /** Force a family instead of detecting it. */
  family?: ChatFamily;
  /** A ready Go template to use verbatim (skips the translation; give `stops` with it). */
  template?: string;
  /** Extra or replacement stop strings (with `template`, the only ones). */
  stops?: string[];
  /** Default system prompt (the SYSTEM line). */
  system?: string;
  /** Other PARAMETER lines, e.g. `{ temperature: 0.7, num_ctx: 4096 }`. */
  parameters?: Record<string, string | number | boolean>;
}

const TEMPLATES: Record<ChatFamily, string> = {
  chatml: `{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ if $last }}<|im_start|>assistant
{{ end }}
{{- else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- end }}
{{- end }}`,
  llama3: `{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ .Content }}{{ if not $last }}<|eot_id|>{{ end }}
{{- end }}
{{- end }}`,
  // Gemma has no system role: as Ollama's own Gemma templates do, a system message is a user turn.
  gemma: `{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if or (eq .Role "user") (eq .Role "system") }}<start_of_turn>user
{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}`,
};

const STOPS: Record<ChatFamily, string[]> = {
  chatml: ['<|im_start|>', '<|im_end|>'],
  llama3: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  gemma: ['<start_of_turn>', '<end_of_turn>'],
};

/** The chat family of an HF chat template, from the turn markers it writes; null when unknown. */
export function detectChatFamily(chatTemplate: string): ChatFamily | null {
  if (chatTemplate.includes('<|im_start|>')) return 'chatml';
  if (chatTemplate.includes('<|start_header_id|>')) return 'llama3';
  if (chatTemplate.includes('<start_of_turn>')) return 'gemma';
  return null;
}

export function ollamaTemplate(family: ChatFamily): { template: string; stops: string[] } {
  return { template: TEMPLATES[family], stops: [...STOPS[family]] };
}

function quoteBlock(what: string, text: string): string {
  if (text.includes('"""')) throw new LorafitError('E_EXPORT', `Modelfile ${what} cannot contain '"""'`);
  return `"""${text}"""`;
}

function quoteValue(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  if (/[\s"]/.test(v) || v === '') return JSON.stringify(v);
  return v;
}

function oneLine(what: string, v: string): string {
  if (/[\r\n]/.test(v)) throw new LorafitError('E_EXPORT', `Modelfile ${what} '${v}' must be one line`);
  return v;
}

/** The text of an Ollama Modelfile. */
export function ollamaModelfile(options: ModelfileOptions): string {
  const lines: string[] = [`FROM ${oneLine('FROM', options.from)}`];
  if (options.adapter) lines.push(`ADAPTER ${oneLine('ADAPTER', options.adapter)}`);

  let template: string | null = options.template ?? null;
  let stops: string[] = [];
  if (template === null) {
    const family = options.family ?? (options.chatTemplate ? detectChatFamily(options.chatTemplate) : null);
    if (family) ({ template, stops } = ollamaTemplate(family));
    else if (options.chatTemplate) {
      throw new LorafitError(
        'E_EXPORT',
        'the chat template is not ChatML, Llama 3 or Gemma: pass `family` or a ready Ollama `template` (Go template syntax) for the Modelfile',
      );
    }
  }
  for (const s of options.stops ?? []) if (!stops.includes(s)) stops.push(s);

  if (template !== null) lines.push(`TEMPLATE ${quoteBlock('TEMPLATE', template)}`);
  for (const s of stops) lines.push(`PARAMETER stop ${JSON.stringify(oneLine('stop', s))}`);
  for (const [k, v] of Object.entries(options.parameters ?? {})) {
    if (!/^[a-z_][a-z0-9_]*$/.test(k)) throw new LorafitError('E_EXPORT', `Modelfile PARAMETER name '${k}' is not valid`);
    lines.push(`PARAMETER ${k} ${quoteValue(typeof v === 'string' ? oneLine(k, v) : v)}`);
  }
  if (options.system !== undefined) lines.push(`SYSTEM ${quoteBlock('SYSTEM', options.system)}`);
  return lines.join('\n') + '\n';
}

export async function writeModelfile(file: string, options: ModelfileOptions): Promise<string> {
  const text = ollamaModelfile(options);
  await writeFileAtomic(file, text);
  return text;
}
