#include "causal_lm.h"

#include <ATen/core/grad_mode.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>

#include "bnb_format.h"
#include "cpu_matmul.h"
#include "error.h"
#include "layers/attention_mask.h"
#include "layers/checkpoint.h"
#include "layers/rms_norm.h"
#include "state_dict.h"

namespace lorafit {

CausalLM::CausalLM(ModelConfig config, at::ScalarType dtype, at::Device device)
    : config_(std::move(config)), dtype_(dtype), device_(device), rotary_(config_) {}

std::unique_ptr<CausalLM> CausalLM::load(const std::string& dir, const LoadOptions& options) {
  ModelConfig config = load_config(dir);
  SafetensorsWeights weights(dir);
  return load(config, weights, options, dir);
}

std::unique_ptr<CausalLM> CausalLM::load(const ModelConfig& config, WeightSource& weights, const LoadOptions& options,
                                         const std::string& where) {
  std::unique_ptr<CausalLM> m(new CausalLM(config, options.dtype, options.device));
  const ModelConfig& c = m->config_;
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    return weights.load(name, shape, options.dtype, options.device);
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t q_out = c.num_attention_heads * D, kv_out = c.num_key_value_heads * D;
  if (options.quantize == QuantKind::kNf4 && (options.block_size < 2 || options.block_size % 2 != 0 || options.block_size > 4096))
    throw Error("E_OPTION", "option 'blockSize' must be an even number between 2 and 4096, got " + std::to_string(options.block_size));
  auto linear = [&](const std::string& prefix, int64_t out, int64_t in, bool bias) {
    at::Tensor b = bias ? get(prefix + ".bias", {out}) : at::Tensor();
    const std::string key = prefix + ".weight";
    if (weights.has(key + kBnbNf4StateSuffix) || weights.has(key + kBnbFp4StateSuffix)) {
      // A pre-quantized bitsandbytes checkpoint: keep the stored NF4 weight as it is.
      if (options.quantize == QuantKind::kInt8)
        throw Error("E_OPTION", "option 'quantize': " + where + " holds NF4 (bitsandbytes 4-bit) weights; load it without quantize or with quantize 'nf4'");
      Nf4Weight q = bnb_nf4_deserialize([&](const std::string& n) { return weights.raw(n); }, key, {out, in});
      if (!options.device.is_cpu()) {
        for (at::Tensor* t : {&q.packed, &q.absmax, &q.absmax_q, &q.absmax2, &q.nested_code})
          if (t->defined()) *t = t->to(options.device);
      }
      m->prequantized_ = true;
      m->quant_kind_ = QuantKind::kNf4;
      m->double_quant_ = q.double_quant;
      m->block_size_ = q.block_size;
      return LoraLinear(std::make_shared<const QuantizedWeight>(std::move(q)), b, options.dtype);
    }
    if (weights.has(prefix + ".SCB"))
      throw Error("E_QUANT_STATE", where + ": '" + prefix + ".SCB' marks a bitsandbytes 8-bit checkpoint, which lorafit does not read; "
                                           "load the original weights with quantize: 'int8' instead");
    if (options.quantize == QuantKind::kNone) return LoraLinear(get(key, {out, in}), b);
    // As transformers does: cast to the compute dtype, then quantize. One tensor at a time: the
    // mapped source pages are released right after, so no dense copy of the model accumulates.
    at::Tensor w = weights.view(key, {out, in}).to(options.device, options.dtype);  // [out, in]
    std::shared_ptr<const QuantizedWeight> q;
    if (options.quantize == QuantKind::kNf4)
      q = std::make_shared<const QuantizedWeight>(quantize_nf4(w, options.block_size, options.double_quant));
    else
      q = std::make_shared<const QuantizedWeight>(quantize_int8_rowwise(w));
    w = at::Tensor();
    weights.release(key);
    return LoraLinear(std::move(q), b, options.dtype);
  };
  if (options.quantize != QuantKind::kNone) {
    m->quant_kind_ = options.quantize;
    m->double_quant_ = options.quantize == QuantKind::kNf4 && options.double_quant;
    m->block_size_ = options.quantize == QuantKind::kNf4 ? options.block_size : 0;
  }

  m->embed_tokens_ = get("model.embed_tokens.weight", {c.vocab_size, H});
  // Not num_hidden_layers itself: a config claiming 1e8 layers must fail on the first missing
  // weight (naming it), not on reserving gigabytes of layer objects ('out of memory').
  m->layers_.reserve(std::min<int64_t>(c.num_hidden_layers, 1024));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    DecoderLayer layer(m->config_, i);
    const bool qkv_bias = c.qkv_bias || c.attention_bias;
    layer.self_attn.q_proj = linear(p + ".self_attn.q_proj", q_out, H, qkv_bias);
    layer.self_attn.k_proj = linear(p + ".self_attn.k_proj", kv_out, H, qkv_bias);
    layer.self_attn.v_proj = linear(p + ".self_attn.v_proj", kv_out, H, qkv_bias);
    layer.self_attn.o_proj = linear(p + ".self_attn.o_proj", H, q_out, c.attention_bias);
    layer.mlp.gate_proj = linear(p + ".mlp.gate_proj", I, H, c.mlp_bias);
    layer.mlp.up_proj = linear(p + ".mlp.up_proj", I, H, c.mlp_bias);
    layer.mlp.down_proj = linear(p + ".mlp.down_proj", H, I, c.mlp_bias);
    layer.self_attn.fuse_projections();  // dense bases only; quantized ones stay per projection
    layer.mlp.fuse_projections();
    layer.input_layernorm = get(p + ".input_layernorm.weight", {H});
    layer.post_attention_layernorm = get(p + ".post_attention_layernorm.weight", {H});
    if (c.sandwich_norms) {
      layer.pre_feedforward_layernorm = get(p + ".pre_feedforward_layernorm.weight", {H});
      layer.post_feedforward_layernorm = get(p + ".post_feedforward_layernorm.weight", {H});
    }
    m->layers_.push_back(std::move(layer));
  }
  m->norm_ = get("model.norm.weight", {H});
  if (c.tie_word_embeddings) {
    m->lm_head_ = m->embed_tokens_;
  } else if (weights.has("lm_head.weight")) {
    m->lm_head_ = get("lm_head.weight", {c.vocab_size, H});
  } else {
    throw Error(weights.error_code(), where + ": the model config says tie_word_embeddings is false, but 'lm_head.weight' is missing");
  }
  for (const auto& name : weights.unused())
    if (name != "lm_head.weight" && name.find("rotary_emb.inv_freq") == std::string::npos)
      m->warnings_.push_back("unused weight in checkpoint: " + name);
#if defined(__GLIBC__)
  // Loading freed one temporary per tensor (dtype casts, quantization scratch) between the
  // tensors it keeps; hand the free heap pages back so resident memory is what the model holds.
  ::malloc_trim(0);
#endif
  return m;
}

namespace {
// Checks `segments` against a [B, T] input and returns the positions restarting per segment.
at::Tensor segment_positions(const std::vector<int64_t>& segments, int64_t B, int64_t T, at::Device device) {
  std::vector<int64_t> pos;
  pos.reserve(static_cast<size_t>(B * T));
  int64_t offset = 0;
  for (int64_t len : segments) {
    if (len <= 0) throw Error("E_SHAPE", "segment lengths must be positive, got " + std::to_string(len));
    if (offset / T != (offset + len - 1) / T)
      throw Error("E_SHAPE", "a segment crosses a row boundary (rows of " + std::to_string(T) + " tokens): every row must start a segment");
    for (int64_t i = 0; i < len; ++i) pos.push_back(i);
    offset += len;
    if (offset > B * T) break;
  }
  if (offset != B * T)
    throw Error("E_SHAPE", "segment lengths sum to " + std::to_string(offset) + " but the input holds " + std::to_string(B * T) + " tokens");
  return at::tensor(pos, at::kLong).view({B, T}).to(device);
}
}  // namespace

at::Tensor CausalLM::hidden(const at::Tensor& input_ids, const ForwardOptions& o, const ForwardContext& ctx,
                            std::vector<at::Tensor>* hidden_states) const {
  if (input_ids.dim() != 2) throw Error("E_SHAPE", "input_ids must be [batch, seq]");
  if (o.segments.empty()) return hidden_rows(input_ids, o, ctx, hidden_states);
  // Padding-free: the rows run as one row of B*T tokens, attention isolated per segment.
  if (ctx.cache) throw Error("E_INPUT", "segments (padding-free rows) cannot be combined with a KV cache");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  at::Tensor pos = segment_positions(o.segments, B, T, device_);
  if (o.position_ids.defined()) {
    if (o.position_ids.sizes() != input_ids.sizes()) throw Error("E_SHAPE", "position_ids must have the shape of input_ids");
    pos = o.position_ids.to(device_, at::kLong);
  }
  ForwardOptions flat;
  flat.position_ids = pos.reshape({1, B * T});
  ForwardContext seg = ctx;
  seg.segments = &o.segments;
  at::Tensor h = hidden_rows(input_ids.reshape({1, B * T}), flat, seg, hidden_states);  // [1, B*T, hidden]
  if (hidden_states)
    for (auto& t : *hidden_states) t = t.view({B, T, -1});
  return h.view({B, T, -1});
}

at::Tensor CausalLM::hidden_rows(const at::Tensor& input_ids, const ForwardOptions& o, const ForwardContext& ctx,
                                 std::vector<at::Tensor>* hidden_states) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = ctx.cache ? ctx.cache->length : 0;
  at::Tensor ids = input_ids.to(device_, at::kLong);
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config_.vocab_size))
    throw Error("E_INPUT", "input_ids hold a token id outside [0, " + std::to_string(config_.vocab_size) + ")");
  if (o.attention_mask.defined() && (o.attention_mask.dim() != 2 || o.attention_mask.size(0) != B || o.attention_mask.size(1) != past + T))
    throw Error("E_SHAPE", "attention_mask must be [batch, past + seq] = [" + std::to_string(B) + ", " + std::to_string(past + T) + "]");
  at::Tensor pos = o.position_ids.defined()
                       ? o.position_ids.to(device_, at::kLong)
                       : at::arange(past, past + T, at::TensorOptions().dtype(at::kLong).device(device_)).unsqueeze(0).expand({B, T});
  if (pos.sizes() != ids.sizes()) throw Error("E_SHAPE", "position_ids must have the shape of input_ids");

  at::Tensor h = at::embedding(embed_tokens_weight(ctx.active_adapters), ids);  // [B, T, hidden]
  if (config_.scale_embeddings) {
    // HF multiplies by sqrt(hidden) rounded to the compute dtype.
    at::Tensor normalizer = at::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)), at::kDouble).to(dtype_);
    h = h * normalizer.to(device_);
  }
  auto [cos, sin] = rotary_.cos_sin(pos, dtype_);
  // Without padding or a cache, full-attention layers need no mask tensor: SDPA's is_causal path
  // (flash attention on CPU) keeps no [B, H, T, S] weights for backward. Soft-capping (eager
  // attention) always needs the explicit bias.
  // Segments (padding-free rows) are isolated inside the attention layers, which build their own
  // per-segment masks.
  const bool plain_causal = ctx.segments != nullptr ||
                            (past == 0 && config_.attn_logit_softcapping <= 0 &&
                             (!o.attention_mask.defined() || o.attention_mask.ne(0).all().item<bool>()));
  at::Tensor full_bias = plain_causal ? at::Tensor() : attention_bias(o.attention_mask, B, T, past, 0, dtype_, device_);
  at::Tensor sliding_bias;
  if (config_.sliding_window > 0 && !ctx.segments) sliding_bias = attention_bias(o.attention_mask, B, T, past, config_.sliding_window, dtype_, device_);
  if (hidden_states) hidden_states->push_back(h);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const DecoderLayer& layer = layers_[i];
    const at::Tensor& bias = layer.self_attn.sliding() ? sliding_bias : full_bias;
    if (ctx.gradient_checkpointing && at::GradMode::is_enabled() && !ctx.cache)
      h = checkpointed_layer(layer, h, cos, sin, bias, ctx);
    else
      h = layer.forward(h, cos, sin, bias, ctx);
    if (hidden_states && i + 1 < layers_.size()) hidden_states->push_back(h);
  }
  h = rms_norm(h, norm_, config_.rms_norm_eps, config_.gemma_norm);
  if (hidden_states) hidden_states->push_back(h);
  if (ctx.cache) ctx.cache->length = past + T;
  return h;
}

at::Tensor CausalLM::logits(const at::Tensor& hidden) const { return logits(hidden, context()); }

at::Tensor CausalLM::logits(const at::Tensor& hidden, const ForwardContext& ctx) const {
  at::Tensor out = frozen_linear(hidden, lm_head_weight(ctx.active_adapters), {});
  if (config_.final_logit_softcapping > 0) {
    const double cap = config_.final_logit_softcapping;
    out = at::tanh(out / cap) * cap;
  }
  return out;
}

ForwardOutput CausalLM::forward(const at::Tensor& input_ids, const ForwardOptions& o, const ForwardContext& ctx) const {
  ForwardOutput out;
  at::Tensor h = hidden(input_ids, o, ctx, o.output_hidden_states ? &out.hidden_states : nullptr);
  if (o.last_only) h = h.narrow(1, h.size(1) - 1, 1);
  out.logits = logits(h, ctx);
  return out;
}

const at::Tensor& CausalLM::weight_in_use(const std::string& module, const at::Tensor& base, const std::vector<std::string>* active) const {
  if (!active || module_copies_.empty()) return base;
  for (const auto& name : *active) {
    auto a = module_copies_.find(name);
    if (a == module_copies_.end()) continue;
    auto m = a->second.find(module);
    if (m != a->second.end()) return m->second;
  }
  return base;
}

void CausalLM::adopt_module_copy(const std::string& module, const at::Tensor& weight) {
  if (config_.tie_word_embeddings)
    throw Error("E_ADAPTER", "merging the trained copy of " + module + " into a model with tied embeddings would untie lm_head from embed_tokens; "
                             "save the adapter and load it with PEFT, or train without modules_to_save");
  at::Tensor w = weight.detach().to(dtype_).contiguous();
  if (module == "model.embed_tokens") embed_tokens_ = w;
  else if (module == "lm_head") lm_head_ = w;
  else throw Error("E_ADAPTER", "no module '" + module + "' to merge into");
}

namespace {
// The seven projections of a decoder layer under their HF names.
std::array<std::pair<const char*, LoraLinear*>, 7> layer_linears(DecoderLayer& l) {
  return {{{".self_attn.q_proj", &l.self_attn.q_proj},
           {".self_attn.k_proj", &l.self_attn.k_proj},
           {".self_attn.v_proj", &l.self_attn.v_proj},
           {".self_attn.o_proj", &l.self_attn.o_proj},
           {".mlp.gate_proj", &l.mlp.gate_proj},
           {".mlp.up_proj", &l.mlp.up_proj},
           {".mlp.down_proj", &l.mlp.down_proj}}};
}
}  // namespace

std::vector<std::pair<std::string, at::Tensor>> CausalLM::parameter_entries() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back("model.embed_tokens.weight", embed_tokens_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    DecoderLayer& l = const_cast<DecoderLayer&>(layers_[i]);
    for (const auto& [name, lin] : layer_linears(l)) {
      out.emplace_back(p + name + ".weight", lin->weight());  // undefined while quantized
      if (lin->bias().defined()) out.emplace_back(p + name + ".bias", lin->bias());
    }
    out.emplace_back(p + ".input_layernorm.weight", l.input_layernorm);
    out.emplace_back(p + ".post_attention_layernorm.weight", l.post_attention_layernorm);
    if (l.pre_feedforward_layernorm.defined()) {
      out.emplace_back(p + ".pre_feedforward_layernorm.weight", l.pre_feedforward_layernorm);
      out.emplace_back(p + ".post_feedforward_layernorm.weight", l.post_feedforward_layernorm);
    }
  }
  out.emplace_back("model.norm.weight", norm_);
  if (!config_.tie_word_embeddings) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> CausalLM::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& e : parameter_entries())
    if (e.second.defined()) out.push_back(std::move(e));
  return out;
}

std::vector<std::pair<std::string, LoraLinear*>> CausalLM::named_linears() {
  std::vector<std::pair<std::string, LoraLinear*>> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    for (const auto& [name, lin] : layer_linears(layers_[i])) out.emplace_back(p + name, lin);
  }
  return out;
}

std::vector<std::string> CausalLM::parameter_names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : parameter_entries()) out.push_back(name);
  return out;
}

const QuantizedWeight* CausalLM::quantized_weight(const std::string& name) const {
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return nullptr;
  const std::string path = name.substr(0, name.size() - suffix.size());
  for (auto& [p, lin] : const_cast<CausalLM*>(this)->named_linears())
    if (p == path) return lin->is_quantized() ? lin->quantized() : nullptr;
  return nullptr;
}

at::Tensor CausalLM::parameter(const std::string& name) const {
  if (const QuantizedWeight* q = quantized_weight(name)) return q->dequantize(dtype_);
  for (auto& [k, t] : named_parameters())
    if (k == name) return t;
  throw Error("E_INPUT", "the model has no parameter '" + name + "'");
}

StorageReport CausalLM::storage_report() const {
  StorageReport r;
  for (auto& [path, lin] : const_cast<CausalLM*>(this)->named_linears()) {
    const int64_t n = lin->in_features() * lin->out_features();
    r.linear_params += n;
    if (lin->is_quantized()) {
      const int64_t b = lin->quantized()->storage_bytes();
      r.linear_bytes += b;
      r.quantized_params += n;
      r.quantized_bytes += b;
    } else {
      r.linear_bytes += lin->weight().numel() * static_cast<int64_t>(lin->weight().element_size());
    }
  }
  for (const DecoderLayer& layer : layers_) {
    r.projection_groups += 2;
    r.fused_projection_groups += (layer.self_attn.projections_fused() ? 1 : 0) + (layer.mlp.projections_fused() ? 1 : 0);
  }
  for (const auto& [name, t] : named_parameters()) {
    const std::string lin_suffix = "_proj.weight";  // the decoder projections, counted above
    if (name.size() > lin_suffix.size() && name.compare(name.size() - lin_suffix.size(), lin_suffix.size(), lin_suffix) == 0) continue;
    r.other_params += t.numel();
    r.other_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  }
  return r;
}

void CausalLM::regroup_projections() {
  at::NoGradGuard no_grad;
  for (DecoderLayer& layer : layers_) {
    layer.self_attn.fuse_projections();
    layer.mlp.fuse_projections();
  }
}

void CausalLM::set_full_training(bool on) {
  if (on && storage_report().quantized_params > 0)
    throw Error("E_QUANTIZED", "full-parameter training needs dense weights; this model's base is quantized (" + std::string(quant_kind_name(quant_kind_)) +
                                   "): train a LoRA adapter on it, or load the model without 'quantize'");
  for (auto& [name, t] : named_parameters()) {
    if (on && !at::isFloatingType(t.scalar_type())) continue;
    t.set_requires_grad(on);
  }
  full_training_ = on;
}

void CausalLM::load_weights(const std::string& dir) {
  if (storage_report().quantized_params > 0)
    throw Error("E_QUANTIZED", "loadWeights needs dense weights; this model's base is quantized: load " + dir + " with Model.load and 'quantize' instead");
  SafetensorsWeights weights(dir);
  at::NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters()) t.copy_(weights.load(name, t.sizes().vec(), t.scalar_type(), t.device()));
}

int64_t CausalLM::num_parameters() const {
  const StorageReport r = storage_report();
  return r.linear_params + r.other_params;
}

}  // namespace lorafit
