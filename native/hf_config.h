// config.json of a Hugging Face causal LM, normalised into one struct. Each architecture has its
// own defaults for the keys HF leaves out (HF writes only values that differ from the class
// defaults), taken from the transformers configuration classes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lorafit {

enum class Arch { Llama, Qwen2, Mistral, Gemma, Gemma2 };

struct RopeScaling {
  std::string type = "default";  // "default" | "llama3" | "linear"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;
  Arch arch = Arch::Llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;     // bias on q/k/v/o (llama option)
  bool qkv_bias = false;           // bias on q/k/v only (qwen2)
  bool mlp_bias = false;
  std::string hidden_act = "silu"; // "silu" | "gelu_pytorch_tanh" | "gelu"
  int64_t sliding_window = 0;      // 0: none
  std::vector<bool> sliding_layers;  // per layer: does the sliding window apply?
  double attn_logit_softcapping = 0;   // 0: off
  double final_logit_softcapping = 0;  // 0: off
  double attention_scale = 0;          // q scaling: head_dim^-0.5, or query_pre_attn_scalar^-0.5 (gemma2)
  bool gemma_norm = false;             // RMSNorm scales by (1 + w), computed in fp32
  bool scale_embeddings = false;       // hidden = embed * sqrt(hidden_size)
  bool sandwich_norms = false;         // gemma2: post-attention, pre- and post-feed-forward norms
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
  std::string torch_dtype;             // as written (informational)
};

// Reads <dir>/config.json (or a config.json path). Throws Error(E_MODEL_CONFIG) naming the key.
ModelConfig load_config(const std::string& path);
ModelConfig parse_config(const std::string& json_text, const std::string& where);
// The normalised config as JSON (camelCase keys) for the TypeScript side.
std::string config_to_json(const ModelConfig& c);
const char* supported_model_types();

}  // namespace lorafit
