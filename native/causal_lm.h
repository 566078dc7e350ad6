// A decoder-only causal LM (Llama, Qwen2, Mistral, Gemma, Gemma 2) built from a Hugging Face
// folder. Parameter names are exactly the checkpoint keys (model.layers.N.self_attn.q_proj.weight).
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "forward_context.h"
#include "hf_config.h"
#include "layers/attention.h"
#include "layers/decoder_layer.h"
#include "layers/rotary.h"

namespace lorafit {

class WeightSource;  // state_dict.h

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // the compute dtype (embeddings, norms, lm_head, activations)
  at::Device device = at::kCPU;
  // QLoRA: quantize the decoder layers' linear weights as they are read (tensor by tensor, so the
  // dense model never exists in memory). Embeddings, norms and lm_head stay in `dtype`.
  QuantKind quantize = QuantKind::kNone;
  bool double_quant = true;   // NF4: 8-bit quantized absmax (bitsandbytes compress_statistics)
  int64_t block_size = 64;    // NF4 block size
};

// What the model's weights occupy (bytes as held in memory).
struct StorageReport {
  int64_t linear_params = 0, linear_bytes = 0;        // decoder-layer projections (all of them)
  int64_t quantized_params = 0, quantized_bytes = 0;  // those of them stored quantized
  int64_t other_params = 0, other_bytes = 0;          // embeddings, norms, lm_head, biases
  // Projection groups (q/k/v and gate/up of each layer) computed as one GEMM (layers/projection_group.h)
  int64_t projection_groups = 0, fused_projection_groups = 0;
};

struct ForwardOptions {
  at::Tensor attention_mask;   // [B, S] 1 = token, 0 = padding; undefined = all ones
  at::Tensor position_ids;     // [B, T] int64; undefined = past .. past+T-1 (with segments: 0.. per segment)
  // Padding-free / packed input: lengths of the examples laid end to end over the B*T tokens in
  // row-major order (sum = B*T; every row starts a segment). Each example attends only to itself
  // and its positions restart at 0; the attention mask is then not used. Empty: ordinary rows.
  std::vector<int64_t> segments;
  bool last_only = false;      // logits of the last position only
  bool output_hidden_states = false;
};

struct ForwardOutput {
  at::Tensor logits;                       // [B, T, V] (or [B, 1, V]) in the compute dtype
  std::vector<at::Tensor> hidden_states;   // as HF: embeddings, each layer's output, the last one after the final norm
};

class CausalLM {
 public:
  // A Hugging Face folder (config.json + safetensors).
  static std::unique_ptr<CausalLM> load(const std::string& dir, const LoadOptions& options);
  // Any weight source (a GGUF file: GgufWeights); `where` names it in messages.
  static std::unique_ptr<CausalLM> load(const ModelConfig& config, WeightSource& weights, const LoadOptions& options,
                                        const std::string& where);

  // input_ids: [B, T] int64
  ForwardOutput forward(const at::Tensor& input_ids, const ForwardOptions& options, const ForwardContext& ctx) const;
  // Final-normed hidden states [B, T, hidden] (the input of lm_head).
  at::Tensor hidden(const at::Tensor& input_ids, const ForwardOptions& options, const ForwardContext& ctx,
                    std::vector<at::Tensor>* hidden_states = nullptr) const;
  // lm_head (+ Gemma 2's final soft-capping): [..., hidden] -> [..., V]; with a context, the
  // lm_head of its active adapters (modules_to_save), else of the model's active adapters.
  at::Tensor logits(const at::Tensor& hidden) const;
  at::Tensor logits(const at::Tensor& hidden, const ForwardContext& ctx) const;

  // The dense tensors (the live parameters). A quantized projection's weight is not among them.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  // Every weight name of the checkpoint layout, quantized ones included, in checkpoint order.
  std::vector<std::string> parameter_names() const;
  // Every checkpoint key with its tensor; a quantized linear's weight is undefined here.
  std::vector<std::pair<std::string, at::Tensor>> parameter_entries() const;
  // One weight, dense (a quantized projection is dequantized to the compute dtype). Error(E_INPUT) if unknown.
  at::Tensor parameter(const std::string& name) const;
  // The quantized projection behind weight `name` (model.layers.0.mlp.up_proj.weight), or null.
  const QuantizedWeight* quantized_weight(const std::string& name) const;
  // What the weights occupy; quantized_bytes / quantized_params is the bytes per quantized parameter.
  StorageReport storage_report() const;
  // Regroups q/k/v and gate/up as single GEMMs where a merge or unmerge replaced their weights.
  void regroup_projections();
  // How the base was quantized (kNone: dense); NF4 settings as loaded.
  QuantKind quantization() const { return quant_kind_; }
  bool double_quant() const { return double_quant_; }
  int64_t block_size() const { return block_size_; }
  bool prequantized() const { return prequantized_; }
  void add_warning(std::string w) { warnings_.push_back(std::move(w)); }
  // Every projection a LoRA adapter may wrap, by module path (model.layers.0.self_attn.q_proj).
  std::vector<std::pair<std::string, LoraLinear*>> named_linears();
  int64_t num_parameters() const;
  // Full-parameter training: every base weight requires grad (pretraining, full fine-tuning).
  void set_full_training(bool on);
  // Copies the weights of another folder of the same architecture and shapes into this model.
  void load_weights(const std::string& dir);
  bool full_training() const { return full_training_; }

  const ModelConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  const std::vector<std::string>& load_warnings() const { return warnings_; }
  // Serialises native calls on this model: autograd state and adapters are shared.
  std::mutex& mutex() { return mutex_; }
  // Adapters applied in forward passes (empty: the base model).
  std::vector<std::string>& active_adapters() { return active_adapters_; }
  // A forward context that applies the active adapters.
  ForwardContext context(bool training = false) const {
    ForwardContext ctx;
    ctx.training = training;
    ctx.active_adapters = &active_adapters_;
    return ctx;
  }
  const at::Tensor& lm_head_weight() const { return lm_head_weight(&active_adapters_); }

  // PEFT's modules_to_save: per adapter, fully trainable copies of whole modules
  // ("model.embed_tokens", "lm_head"; lora_adapter.cc makes them), used instead of the base
  // weight while that adapter is active. A copy of a tied weight replaces it on its side only, as
  // PEFT's ModulesToSaveWrapper does (ensure_weight_tying false).
  std::map<std::string, std::map<std::string, at::Tensor>>& module_copies() { return module_copies_; }
  // The weight in use for these active adapters: the first one's copy, else the base weight.
  const at::Tensor& embed_tokens_weight(const std::vector<std::string>* active) const { return weight_in_use("model.embed_tokens", embed_tokens_, active); }
  const at::Tensor& lm_head_weight(const std::vector<std::string>* active) const { return weight_in_use("lm_head", lm_head_, active); }
  // merge_and_unload of a copy: it becomes the base weight. Error(E_ADAPTER) where that would
  // untie tied embeddings.
  void adopt_module_copy(const std::string& module, const at::Tensor& weight);

 private:
  CausalLM(ModelConfig config, at::ScalarType dtype, at::Device device);
  // hidden() for ordinary rows (ctx.segments set: one packed row).
  at::Tensor hidden_rows(const at::Tensor& input_ids, const ForwardOptions& options, const ForwardContext& ctx,
                         std::vector<at::Tensor>* hidden_states) const;

  ModelConfig config_;
  at::ScalarType dtype_;
  at::Device device_;
  Rotary rotary_;
  at::Tensor embed_tokens_;  // [V, hidden]
  std::vector<DecoderLayer> layers_;
  at::Tensor norm_;          // [hidden]
  at::Tensor lm_head_;       // [V, hidden]; the same tensor as embed_tokens_ when tied
  std::vector<std::string> warnings_;
  std::vector<std::string> active_adapters_;
  std::map<std::string, std::map<std::string, at::Tensor>> module_copies_;  // adapter -> module -> weight
  const at::Tensor& weight_in_use(const std::string& module, const at::Tensor& base, const std::vector<std::string>* active) const;
  bool full_training_ = false;
  QuantKind quant_kind_ = QuantKind::kNone;
  bool double_quant_ = false;
  int64_t block_size_ = 0;
  bool prequantized_ = false;  // read from a bitsandbytes checkpoint
  std::mutex mutex_;
};

}  // namespace lorafit
