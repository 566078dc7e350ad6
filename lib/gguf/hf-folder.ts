// The non-weight files of a Hugging Face folder for a model loaded from GGUF: config.json and
// generation_config.json from the metadata (as transformers' GGUF loader builds them), and the
// tokenizer (tokenizer.json built from tokenizer.ggml.*, tokenizer_config.json with the special
// tokens, add_bos/add_eos and the chat template), so that `Model.save` of a GGUF model writes a
// folder transformers and lorafit load with the same ids.
import { buildGgufTokenizer } from './tokenizer-json.js';
import { readGguf } from './reader.js';

export interface GgufFolderFiles {
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  /** File name -> text (tokenizer.json, tokenizer_config.json); empty when the file has no tokenizer. */
  tokenizerFiles: Record<string, string>;
}

/**
 * config.json as transformers holds it for the file (`hfConfig`: model.source.hfConfig), minus the
 * loader's bookkeeping; generation_config.json; the tokenizer files.
 */
export async function ggufFolderFiles(file: string, hfConfig: Record<string, unknown>, generationConfig: Record<string, unknown>): Promise<GgufFolderFiles> {
  const config: Record<string, unknown> = { ...hfConfig };
  delete config._model_name_or_path; // general.name, not a config key transformers writes
  const header = await readGguf(file);
  const generation = { ...generationConfig };
  // A GGUF without tokenizer.ggml.* metadata (rare: llama.cpp needs one) saves as a model without a tokenizer.
  if (!header.metadata.has('tokenizer.ggml.model')) return { config, generationConfig: generation, tokenizerFiles: {} };
  const tok = buildGgufTokenizer(header);
  const tokenizerConfig: Record<string, unknown> = {
    // transformers 5 reads this as its TokenizersBackend (tokenizer.json), 4.x as the fast tokenizer
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: tok.bosToken,
    eos_token: tok.eosToken,
    unk_token: tok.unkToken,
    pad_token: tok.padToken,
    add_bos_token: tok.addBosToken,
    add_eos_token: tok.addEosToken,
  };
  if (tok.chatTemplate !== null) tokenizerConfig.chat_template = tok.chatTemplate;
  for (const [k, v] of Object.entries(tokenizerConfig)) if (v === null || v === undefined) delete tokenizerConfig[k];
  return {
    config,
    generationConfig: generation,
    tokenizerFiles: {
      'tokenizer.json': tok.json,
      'tokenizer_config.json': `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
    },
  };
}
