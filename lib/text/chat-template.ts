/**
 * Chat templates: choosing the template a model ships and rendering it with `@huggingface/jinja`
 * the way transformers' `apply_chat_template` does (trim_blocks + lstrip_blocks, special tokens as
 * variables, `raise_exception`, `tools`, `add_generation_prompt`).
 */
import { Template } from '@huggingface/jinja';
import { LorafitDataError } from '../data/errors.js';
import { applyJinjaCompat } from './jinja-compat.js';

applyJinjaCompat();

/** One chat message. Extra fields (`tool_calls`, `reasoning_content`, `name`, ...) reach the template as they are. */
export interface ChatMessage {
  role: string;
  content: string;
  [extra: string]: unknown;
}

export interface RenderOptions {
  /** Append the header that opens an assistant turn (for generation). Default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) definitions in the OpenAI JSON-schema form; passed to the template as `tools`. */
  tools?: unknown[];
  /** Retrieval documents; passed as `documents`. */
  documents?: unknown[];
  /** Any further template variables (`enable_thinking`, `date_string`, ...). */
  extra?: Record<string, unknown>;
}

/** A template that a model folder declares: a single string or named ones (`default`, `tool_use`, ...). */
export type ChatTemplateSource = string | Array<{ name: string; template: string }> | Record<string, string>;

/**
 * ChatML, used when a model ships no template (transformers' old `default_chat_template`).
 * The test fixture generator renders the same string with Python, so keep the two identical.
 */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  '{%- endfor %}' +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Normalise the `chat_template` field of tokenizer_config.json into a name -> template map. */
export function namedChatTemplates(source: ChatTemplateSource | null | undefined): Record<string, string> {
  if (source === null || source === undefined) return {};
  if (typeof source === 'string') return { default: source };
  if (Array.isArray(source)) {
    const out: Record<string, string> = {};
    for (const entry of source) {
      if (!entry || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new LorafitDataError('E_CHAT_TEMPLATE', 'chat_template list entries must be {name, template} objects');
      }
      out[entry.name] = entry.template;
    }
    return out;
  }
  if (typeof source === 'object') {
    const out: Record<string, string> = {};
    for (const [name, template] of Object.entries(source)) {
      if (typeof template === 'string') out[name] = template;
    }
    return out;
  }
  throw new LorafitDataError('E_CHAT_TEMPLATE', `unsupported chat_template value of type ${typeof source}`);
}

/**
 * Pick a template the way transformers does: an explicit name wins; otherwise `tool_use` when tools
 * are given and such a template exists; otherwise `default`; a single unnamed template is `default`.
 */
export function selectChatTemplate(
  templates: Record<string, string>,
  options: { name?: string; hasTools?: boolean } = {},
): string | null {
  if (options.name !== undefined) {
    const found = templates[options.name];
    if (found === undefined) {
      const known = Object.keys(templates);
      throw new LorafitDataError(
        'E_CHAT_TEMPLATE',
        `no chat template named "${options.name}"` + (known.length ? ` (available: ${known.join(', ')})` : ' (the model has none)'),
      );
    }
    return found;
  }
  if (options.hasTools && templates.tool_use !== undefined) return templates.tool_use;
  if (templates.default !== undefined) return templates.default;
  const names = Object.keys(templates);
  if (names.length === 1) return templates[names[0]];
  if (names.length > 1) {
    throw new LorafitDataError(
      'E_CHAT_TEMPLATE',
      `the model has several chat templates and none is named "default"; pick one of: ${names.join(', ')}`,
    );
  }
  return null;
}

/** Special tokens exposed to templates as `bos_token`, `eos_token`, ... (absent ones are left undefined). */
export interface TemplateSpecialTokens {
  bos_token?: string | null;
  eos_token?: string | null;
  unk_token?: string | null;
  pad_token?: string | null;
  additional_special_tokens?: string[];
  [other: string]: unknown;
}

/** A parsed chat template, ready to render many conversations. */
export class ChatTemplate {
  readonly source: string;
  private readonly template: Template;
  private readonly specialTokens: TemplateSpecialTokens;

  constructor(source: string, specialTokens: TemplateSpecialTokens = {}) {
    this.source = source;
    this.specialTokens = specialTokens;
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new LorafitDataError('E_CHAT_TEMPLATE', `chat template does not parse: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  render(messages: ChatMessage[], options: RenderOptions = {}): string {
    if (!Array.isArray(messages)) {
      throw new LorafitDataError('E_CHAT_TEMPLATE', 'messages must be an array of {role, content}');
    }
    const context: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this.specialTokens)) {
      if (value !== undefined && value !== null) context[key] = value;
    }
    Object.assign(context, options.extra ?? {});
    context.messages = messages;
    context.add_generation_prompt = options.addGenerationPrompt ?? false;
    if (options.tools !== undefined) context.tools = options.tools;
    if (options.documents !== undefined) context.documents = options.documents;
    // `raise_exception(msg)` is a global of @huggingface/jinja that throws Error(msg), as in transformers.
    try {
      return this.template.render(context);
    } catch (err) {
      throw new LorafitDataError('E_CHAT_TEMPLATE', `chat template: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * What a template writes right after an assistant message's content to close the turn, found by
 * rendering a probe conversation: the text up to and including the first special token (e.g.
 * `<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, ` </s>`), or, when no special token follows, the
 * text up to the next newline (ChatML rendered for a model that lacks `<|im_end|>`).
 * Returns null when the template writes nothing after the content.
 */
export function detectEndOfTurn(template: ChatTemplate, specialTokens: readonly string[]): string | null {
  const probe = 'LORAFITPROBEANSWER';
  let rendered: string;
  try {
    rendered = template.render([
      { role: 'user', content: 'LORAFITPROBEQUESTION' },
      { role: 'assistant', content: probe },
    ]);
  } catch {
    return null;
  }
  const at = rendered.indexOf(probe);
  if (at < 0) return null;
  const after = rendered.slice(at + probe.length);
  if (after.length === 0) return null;
  let best: { pos: number; end: number } | null = null;
  for (const token of specialTokens) {
    if (!token) continue;
    const pos = after.indexOf(token);
    // Only whitespace may separate the content from its closing token (Llama 2 writes ' </s>').
    if (pos < 0 || after.slice(0, pos).trim() !== '') continue;
    const end = pos + token.length;
    if (best === null || pos < best.pos || (pos === best.pos && end > best.end)) best = { pos, end };
  }
  if (best !== null) return after.slice(0, best.end);
  const newline = after.indexOf('\n');
  const marker = newline < 0 ? after : after.slice(0, newline);
  return marker.length > 0 ? marker : null;
}
