// llama.cpp's llama_token_type: the tokenizer.ggml.token_type value of each vocabulary entry
// (read by lib/gguf/tokenizer-json.ts, written by lib/export/gguf-tokenizer.ts).
export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}
