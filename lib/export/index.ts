// GGUF export (llama.cpp / Ollama): models, LoRA adapters, Modelfiles, and the low-level writer.
export { exportGguf, readModelConfig, writeArchMetadata, llama3RopeFactors, type ExportGgufOptions, type ExportGgufResult } from './gguf-model.js';
export { exportLoraGguf, type ExportLoraGgufOptions, type ExportLoraGgufResult } from './gguf-lora.js';
export { ollamaModelfile, writeModelfile, detectChatFamily, ollamaTemplate, type ChatFamily, type ModelfileOptions } from './ollama.js';
export { readTokenizerMetadata, writeTokenizerMetadata, TokenType, type TokenizerMetadata, type TokenizerExportOptions } from './gguf-tokenizer.js';
export { parseArchConfig, ggufTensorName, permuteQk, type ArchConfig, type HfArch, type GgufArch } from './gguf-arch.js';
export {
  GgufWriter,
  GgufValueType,
  GGML_TYPE,
  LLAMA_FTYPE,
  QK8_0,
  quantizeQ8_0,
  dequantizeQ8_0,
  floatToHalf,
  halfToFloat,
  floatToBf16,
  bf16ToFloat,
  encodeTensor,
  type GgmlDtype,
  type GgufKV,
  type GgufTensorInput,
} from './gguf-writer.js';
