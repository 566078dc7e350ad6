/**
 * Tokenizer: a Hugging Face model folder's tokenizer, loaded with HF's own Rust `tokenizers`
 * bindings, plus the policy transformers layers on top of tokenizer.json: special tokens from
 * tokenizer_config.json / special_tokens_map.json / generation_config.json, `add_bos_token`,
 * and chat templates. A GGUF file's tokenizer (tokenizer.ggml.*) is rebuilt as the tokenizer.json
 * transformers would make of it (gguf/tokenizer-json.ts) and goes through the same policy.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
import { LorafitDataError } from '../data/errors.js';
import { resolveOllamaModel } from '../gguf/ollama.js';
import { readGguf, startsWithGgufMagic } from '../gguf/reader.js';
import { buildGgufTokenizer } from '../gguf/tokenizer-json.js';
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
  /** The tokenizer.json text (for a GGUF file: the one built from its metadata). */
  tokenizerJson: string;
  /** tokenizer.json's `added_tokens`. */
  addedTokens: Array<Record<string, unknown>>;
  nativeSpecial: { prefix: number[]; suffix: number[] };
  config: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  chatTemplates: Record<string, string>;
}

export class Tokenizer {
  /** The model folder, or the .gguf file the tokenizer was read from. */
  readonly dir: string;
  /** Where the tokenizer came from: an HF folder (tokenizer.json) or a GGUF file's metadata. */
  readonly format: 'hf' | 'gguf';
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
  /**
   * sha256 (hex) of everything that decides this tokenizer's output: the tokenizer.json text, the
   * config files read beside it, the chat templates and the options (template override or name).
   * Not the path: a copied model folder has the same fingerprint. Keys the tokenization cache.
   */
  readonly fingerprint: string;

  private readonly native: NativeTokenizer;
  private readonly nativeOptions: { prefix: number[]; suffix: number[] };
  private readonly templateCache = new Map<string, ChatTemplate>();
  private readonly templateOverride: string | null;

  private constructor(dir: string, format: 'hf' | 'gguf', native: NativeTokenizer, files: FolderFiles, options: TokenizerOptions) {
    this.dir = dir;
    this.format = format;
    this.native = native;
    const { config, specialTokensMap, generationConfig } = files;

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

    this.addedTokens = files.addedTokens.map((t) => ({
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

    this.chatTemplates = files.chatTemplates;
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

    this.fingerprint = createHash('sha256')
      .update(
        JSON.stringify({
          format,
          tokenizerJson: createHash('sha256').update(files.tokenizerJson).digest('hex'),
          config,
          specialTokensMap,
          generationConfig,
          chatTemplates: files.chatTemplates,
          nativeSpecial: files.nativeSpecial,
          chatTemplate: options.chatTemplate ?? null,
          chatTemplateName: options.chatTemplateName ?? null,
        }),
      )
      .digest('hex');
  }

  /**
   * Load a tokenizer from a Hugging Face model folder, a GGUF file (any name: Ollama blobs have no
   * extension) or `ollama:NAME[:TAG]`.
   */
  static async load(source: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    if (typeof source !== 'string' || source.length === 0) {
      throw new LorafitDataError('E_TOKENIZER', 'give a model folder, a .gguf file or ollama:NAME[:TAG]');
    }
    // An Ollama model is a GGUF blob ($OLLAMA_MODELS or ~/.ollama/models); E_OLLAMA when it is not there.
    if (source.startsWith('ollama:')) return Tokenizer.fromGguf(await resolveOllamaModel(source), options);
    return isFile(source) ? Tokenizer.fromGguf(source, options) : Tokenizer.fromDir(source, options);
  }

  /** Load `tokenizer.json` and the config files next to it from a Hugging Face model folder (or a GGUF file). */
  static async fromDir(dir: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    if (isFile(dir)) return Tokenizer.fromGguf(dir, options);
    const tokenizerPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) {
      throw new LorafitDataError(
        'E_TOKENIZER',
        'tokenizer.json not found; only fast (tokenizer.json) tokenizers are supported',
        { file: tokenizerPath },
      );
    }
    const tokenizerJson = readFileSync(tokenizerPath, 'utf8');
    const native = loadNative(tokenizerJson, tokenizerPath, 'tokenizer.json');
    const config = readJsonIfExists(join(dir, 'tokenizer_config.json'));
    const files: FolderFiles = {
      tokenizerJson,
      addedTokens: (JSON.parse(tokenizerJson) as { added_tokens?: Array<Record<string, unknown>> }).added_tokens ?? [],
      nativeSpecial: await probeNativeSpecialTokens(native),
      config,
      specialTokensMap: readJsonIfExists(join(dir, 'special_tokens_map.json')),
      generationConfig: readJsonIfExists(join(dir, 'generation_config.json')),
      chatTemplates: readChatTemplates(dir, config),
    };
    return new Tokenizer(dir, 'hf', native, files, options);
  }

  /**
   * The tokenizer a GGUF file's metadata describes, with the ids transformers'
   * `AutoTokenizer.from_pretrained(dir, gguf_file=...)` gives: special tokens, `add_bos_token` /
   * `add_eos_token` and `tokenizer.chat_template` from the metadata, transformers' defaults where absent.
   */
  static async fromGguf(path: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    if (!isGgufFile(path)) {
      throw new LorafitDataError('E_TOKENIZER', 'not a GGUF file (it does not start with "GGUF"); for an HF model give its folder', { file: path });
    }
    const gguf = buildGgufTokenizer(await readGguf(path));
    const native = loadNative(gguf.json, path, 'the tokenizer built from its metadata');
    const files: FolderFiles = {
      tokenizerJson: gguf.json,
      addedTokens: gguf.addedTokens,
      nativeSpecial: await probeNativeSpecialTokens(native),
      config: {
        bos_token: gguf.bosToken,
        eos_token: gguf.eosToken,
        unk_token: gguf.unkToken,
        pad_token: gguf.padToken,
        add_bos_token: gguf.addBosToken,
        add_eos_token: gguf.addEosToken,
      },
      specialTokensMap: {},
      generationConfig: { eos_token_id: gguf.endOfGenerationIds },
      chatTemplates: gguf.chatTemplate === null ? {} : { default: gguf.chatTemplate },
    };
    return new Tokenizer(path, 'gguf', native, files, options);
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

function loadNative(json: string, file: string, what: string): NativeTokenizer {
  try {
    return tokenizers.Tokenizer.fromString(json);
  } catch (err) {
    throw new LorafitDataError('E_TOKENIZER', `${what} cannot be loaded: ${(err as Error).message}`, { file, cause: err });
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isGgufFile(path: string): boolean {
  try {
    return startsWithGgufMagic(path);
  } catch (err) {
    throw new LorafitDataError('E_TOKENIZER', `cannot open: ${(err as Error).message}`, { file: path, cause: err });
  }
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
