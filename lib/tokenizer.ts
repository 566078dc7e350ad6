/**
 * Tokenizer: a Hugging Face model folder's tokenizer, loaded with HF's own Rust `tokenizers`
 * bindings, plus the policy transformers layers on top of tokenizer.json: special tokens from
 * tokenizer_config.json / special_tokens_map.json / generation_config.json, `add_bos_token`,
 * and chat templates.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import tokenizers from 'tokenizers';
import {
  CHATML_TEMPLATE,
  ChatTemplate,
  detectEndOfTurn,
  namedChatTemplates,
  selectChatTemplate,
  type ChatMessage,
  type ChatTemplateSource,
  type RenderOptions,
} from './chat-template.js';
import { LorafitDataError } from './data/errors.js';
import { codePointToUtf16Map, toUtf16Offsets } from './text-offsets.js';

type NativeTokenizer = InstanceType<typeof tokenizers.Tokenizer>;

export interface TokenizerOptions {
  /** Jinja source that replaces the model's chat template (`'chatml'` selects the built-in ChatML). */
  chatTemplate?: string;
  /** Name of the model's template to use by default when it ships several (`default`, `tool_use`, ...). */
  chatTemplateName?: string;
}

export interface EncodeOptions {
  /** Add BOS/EOS as the model's config says (`add_bos_token`, `add_eos_token`). Default true. */
  addSpecialTokens?: boolean;
}

export interface Encoding {
  ids: number[];
  /** `[start, end)` of each token in the input, in UTF-16 units (JavaScript string indices). */
  offsets: Array<[number, number]>;
}

export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
}

export interface ApplyChatTemplateOptions extends RenderOptions {
  /** Use one of the model's named templates for this call. */
  templateName?: string;
}

interface FolderFiles {
  tokenizerJson: string;
  nativeSpecial: { prefix: number[]; suffix: number[] };
  config: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

export class Tokenizer {
  readonly dir: string;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly unkTokenId: number | null;
  /** Whether `encode` prepends BOS (tokenizer_config `add_bos_token`, else what tokenizer.json's post-processor does). */
  readonly addBosToken: boolean;
  readonly addEosToken: boolean;
  readonly addedTokens: readonly AddedTokenInfo[];
  /** Contents of all special tokens (added tokens marked special, plus bos/eos/pad/unk). */
  readonly specialTokens: readonly string[];
  /** The model's own templates by name (empty when it ships none). */
  readonly chatTemplates: Readonly<Record<string, string>>;
  /** The template `applyChatTemplate` uses by default. */
  readonly chatTemplate: string;
  /** True when the model ships no template and ChatML is used instead. */
  readonly usesFallbackChatTemplate: boolean;
  /** What the default template writes after assistant content to end a turn (`<|im_end|>`, `<|eot_id|>`, ...). */
  readonly endOfTurn: string | null;
  /** Token ids that end generation: eos, generation_config's eos ids, the end-of-turn token. */
  readonly stopTokenIds: readonly number[];

  private readonly native: NativeTokenizer;
  private readonly nativeOptions: { prefix: number[]; suffix: number[] };
  private readonly templateCache = new Map<string, ChatTemplate>();
  private readonly templateOverride: string | null;

  private constructor(dir: string, native: NativeTokenizer, files: FolderFiles, options: TokenizerOptions) {
    this.dir = dir;
    this.native = native;
    const { config, specialTokensMap, generationConfig } = files;
    const tokenJson = JSON.parse(files.tokenizerJson) as { added_tokens?: Array<Record<string, unknown>> };

    const special = (key: string): string | null =>
      tokenContent(config[key]) ?? tokenContent(specialTokensMap[key]) ?? null;
    this.bosToken = special('bos_token');
    this.eosToken = special('eos_token');
    this.padToken = special('pad_token');
    this.unkToken = special('unk_token');
    this.bosTokenId = this.bosToken === null ? null : native.tokenToId(this.bosToken);
    this.eosTokenId = this.eosToken === null ? null : native.tokenToId(this.eosToken);
    this.padTokenId = this.padToken === null ? null : native.tokenToId(this.padToken);
    this.unkTokenId = this.unkToken === null ? null : native.tokenToId(this.unkToken);

    this.addedTokens = (tokenJson.added_tokens ?? []).map((t) => ({
      id: Number(t.id),
      content: String(t.content),
      special: Boolean(t.special),
    }));
    const specials = new Set(this.addedTokens.filter((t) => t.special).map((t) => t.content));
    for (const t of [this.bosToken, this.eosToken, this.padToken, this.unkToken]) if (t) specials.add(t);
    this.specialTokens = [...specials];

    // transformers rebuilds the post-processor from add_bos_token/add_eos_token when the config sets them;
    // otherwise tokenizer.json's post-processor decides. Probe what the latter adds.
    const probe = files.nativeSpecial;
    const bosFlag = config.add_bos_token;
    const eosFlag = config.add_eos_token;
    this.addBosToken = typeof bosFlag === 'boolean' ? bosFlag && this.bosTokenId !== null : probe.prefix.length > 0;
    this.addEosToken = typeof eosFlag === 'boolean' ? eosFlag && this.eosTokenId !== null : probe.suffix.length > 0;
    this.nativeOptions = {
      prefix: typeof bosFlag === 'boolean' ? (this.addBosToken ? [this.bosTokenId as number] : []) : probe.prefix,
      suffix: typeof eosFlag === 'boolean' ? (this.addEosToken ? [this.eosTokenId as number] : []) : probe.suffix,
    };

    this.chatTemplates = readChatTemplates(dir, config);
    this.templateOverride =
      options.chatTemplate === undefined ? null : options.chatTemplate === 'chatml' ? CHATML_TEMPLATE : options.chatTemplate;
    const own = selectChatTemplate(this.chatTemplates, { name: options.chatTemplateName });
    this.usesFallbackChatTemplate = this.templateOverride === null && own === null;
    this.chatTemplate = this.templateOverride ?? own ?? CHATML_TEMPLATE;
    this.endOfTurn = detectEndOfTurn(this.template(this.chatTemplate), this.specialTokens);

    const stops = new Set<number>();
    if (this.eosTokenId !== null) stops.add(this.eosTokenId);
    for (const id of [generationConfig.eos_token_id].flat()) if (typeof id === 'number') stops.add(id);
    const eotId = this.endOfTurn === null ? null : native.tokenToId(this.endOfTurn.trim());
    if (eotId !== null && eotId !== undefined) stops.add(eotId);
    this.stopTokenIds = [...stops];
  }

  /** Load `tokenizer.json` and the config files next to it from a Hugging Face model folder. */
  static async fromDir(dir: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    const tokenizerPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) {
      throw new LorafitDataError(
        'E_TOKENIZER',
        'tokenizer.json not found; only fast (tokenizer.json) tokenizers are supported',
        { file: tokenizerPath },
      );
    }
    const tokenizerJson = readFileSync(tokenizerPath, 'utf8');
    let native: NativeTokenizer;
    try {
      native = tokenizers.Tokenizer.fromString(tokenizerJson);
    } catch (err) {
      throw new LorafitDataError('E_TOKENIZER', `tokenizer.json cannot be loaded: ${(err as Error).message}`, {
        file: tokenizerPath,
        cause: err,
      });
    }
    const files: FolderFiles = {
      tokenizerJson,
      nativeSpecial: await probeNativeSpecialTokens(native),
      config: readJsonIfExists(join(dir, 'tokenizer_config.json')),
      specialTokensMap: readJsonIfExists(join(dir, 'special_tokens_map.json')),
      generationConfig: readJsonIfExists(join(dir, 'generation_config.json')),
    };
    return new Tokenizer(dir, native, files, options);
  }

  /** Vocabulary size including added tokens (the embedding may be larger). */
  get vocabSize(): number {
    return this.native.getVocabSize(true);
  }

  tokenToId(token: string): number | null {
    return this.native.tokenToId(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.native.idToToken(id) ?? null;
  }

  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    return (await this.encodeWithOffsets(text, options)).ids;
  }

  /** Encode with each token's `[start, end)` in UTF-16 units; added BOS/EOS get empty spans. */
  async encodeWithOffsets(text: string, options: EncodeOptions = {}): Promise<Encoding> {
    if (typeof text !== 'string') throw new LorafitDataError('E_TOKENIZER', `encode expects a string, got ${typeof text}`);
    const encoding = await this.native.encode(text, null, { addSpecialTokens: false });
    const ids = encoding.getIds();
    const offsets = toUtf16Offsets(encoding.getOffsets(), codePointToUtf16Map(text));
    if (options.addSpecialTokens ?? true) {
      const { prefix, suffix } = this.nativeOptions;
      return {
        ids: [...prefix, ...ids, ...suffix],
        offsets: [
          ...prefix.map((): [number, number] => [0, 0]),
          ...offsets,
          ...suffix.map((): [number, number] => [text.length, text.length]),
        ],
      };
    }
    return { ids, offsets };
  }

  async encodeBatch(texts: string[], options: EncodeOptions = {}): Promise<number[][]> {
    return Promise.all(texts.map((text) => this.encode(text, options)));
  }

  async decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.native.decode(Array.from(ids), options.skipSpecialTokens ?? false);
  }

  /** Render a conversation to text exactly as transformers' `apply_chat_template(..., tokenize=False)`. */
  applyChatTemplate(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    return this.template(this.templateSource(options)).render(messages, options);
  }

  /** Token ids of a rendered conversation (no BOS added: templates write their own, as transformers does). */
  async encodeChat(messages: ChatMessage[], options: ApplyChatTemplateOptions = {}): Promise<number[]> {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  /** The template source a call with these options renders with. */
  templateSource(options: { templateName?: string; tools?: unknown[] } = {}): string {
    if (options.templateName !== undefined) {
      return selectChatTemplate(this.chatTemplates, { name: options.templateName }) as string;
    }
    if (this.templateOverride === null && options.tools !== undefined && this.chatTemplates.tool_use !== undefined) {
      return this.chatTemplates.tool_use;
    }
    return this.chatTemplate;
  }

  /** A parsed template with this tokenizer's special tokens bound (cached by source). */
  template(source: string): ChatTemplate {
    let parsed = this.templateCache.get(source);
    if (parsed === undefined) {
      parsed = new ChatTemplate(source, {
        bos_token: this.bosToken,
        eos_token: this.eosToken,
        pad_token: this.padToken,
        unk_token: this.unkToken,
        additional_special_tokens: this.addedTokens.filter((t) => t.special).map((t) => t.content),
      });
      this.templateCache.set(source, parsed);
    }
    return parsed;
  }
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{content, ...}`. */
function tokenContent(value: unknown): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function readJsonIfExists(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch (err) {
    throw new LorafitDataError('E_TOKENIZER', `malformed JSON: ${(err as Error).message}`, { file: path, cause: err });
  }
}

/**
 * Templates the folder declares, in transformers' order of precedence: `chat_template.jinja` and
 * `additional_chat_templates/*.jinja` (newer saves), then tokenizer_config's `chat_template`
 * (a string or a list of {name, template}), then `chat_template.json` (processor saves).
 */
function readChatTemplates(dir: string, config: Record<string, unknown>): Record<string, string> {
  const templates: Record<string, string> = {};
  const fromJson = readJsonIfExists(join(dir, 'chat_template.json')).chat_template;
  if (fromJson !== undefined) Object.assign(templates, namedChatTemplates(fromJson as ChatTemplateSource));
  Object.assign(templates, namedChatTemplates(config.chat_template as ChatTemplateSource | undefined));
  const extraDir = join(dir, 'additional_chat_templates');
  if (existsSync(extraDir)) {
    for (const name of readdirSync(extraDir).sort()) {
      if (name.endsWith('.jinja')) templates[name.slice(0, -'.jinja'.length)] = readFileSync(join(extraDir, name), 'utf8');
    }
  }
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) templates.default = readFileSync(jinjaPath, 'utf8');
  return templates;
}

/** The ids tokenizer.json's post-processor puts before and after a single sequence. */
async function probeNativeSpecialTokens(native: NativeTokenizer): Promise<{ prefix: number[]; suffix: number[] }> {
  const probe = 'a b';
  const plain = (await native.encode(probe, null, { addSpecialTokens: false })).getIds();
  const full = (await native.encode(probe, null, { addSpecialTokens: true })).getIds();
  const start = indexOfSequence(full, plain);
  if (start < 0 || plain.length === 0) return { prefix: [], suffix: [] };
  return { prefix: full.slice(0, start), suffix: full.slice(start + plain.length) };
}

function indexOfSequence(haystack: number[], needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
