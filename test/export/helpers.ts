// Shared helpers for the GGUF export tests.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gguf } from '@huggingface/gguf';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hf');

export function tempDir(prefix = 'lorafit-gguf-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** GPT-2's bytes_to_unicode: the printable character that stands for each byte in byte-level BPE. */
export function byteLevelChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/**
 * A minimal valid byte-level BPE tokenizer for the vocab-256 fixture models: token id b is byte b,
 * no merges (the fixtures ship no tokenizer; llama.cpp needs one in the file).
 */
export function writeByteTokenizer(dir: string, options: { chatTemplate?: string } = {}): string {
  mkdirSync(dir, { recursive: true });
  const chars = byteLevelChars();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  const config: Record<string, unknown> = { tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: false };
  if (options.chatTemplate) config.chat_template = options.chatTemplate;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

/** Reads a GGUF file back with @huggingface/gguf (typed metadata) plus the raw bytes for tensor data. */
export async function readGguf(file: string) {
  const parsed = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const bytes = readFileSync(file);
  const data = (name: string): Uint8Array => {
    const i = parsed.tensorInfos.findIndex((t) => t.name === name);
    if (i < 0) throw new Error(`no tensor ${name}`);
    const start = Number(parsed.tensorDataOffset + parsed.tensorInfos[i].offset);
    return new Uint8Array(bytes.buffer, bytes.byteOffset + start, bytes.length - start);
  };
  const f32 = (name: string, n: number): Float32Array => new Float32Array(data(name).slice(0, n * 4).buffer);
  return { ...parsed, bytes, data, f32 };
}

