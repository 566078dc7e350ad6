#include "lora_adapter.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "error.h"
#include "lora_init.h"
#include "safetensors.h"

namespace lorafit {

double lora_scaling(const LoraSpec& s) {
  return s.rslora ? s.alpha / std::sqrt(static_cast<double>(s.rank)) : s.alpha / static_cast<double>(s.rank);
}

namespace {
LoraLinear* find_linear(CausalLM& model, const std::string& path) {
  for (auto& [name, lin] : model.named_linears())
    if (name == path) return lin;
  return nullptr;
}
}  // namespace

bool has_adapter(CausalLM& model, const std::string& name) {
  if (model.module_copies().count(name)) return true;
  for (auto& [path, lin] : model.named_linears())
    if (lin->adapters().count(name)) return true;
  return false;
}

void add_adapter(CausalLM& model, const LoraSpec& s) {
  if (s.rank <= 0) throw Error("E_OPTION", "option 'rank' must be a positive integer");
  if (s.targets.empty()) throw Error("E_ADAPTER", "adapter '" + s.name + "' targets no module");
  if (has_adapter(model, s.name)) throw Error("E_ADAPTER", "an adapter named '" + s.name + "' is already attached");
  check_lora_init(s.init);
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  const bool rewrites = init_rewrites_base(s.init);
  struct Made {
    LoraLinear* lin;
    LoraWeights w;
    at::Tensor residual;  // the new base weight (PiSSA / OLoRA), undefined otherwise
    std::shared_ptr<const QuantizedWeight> requantized;  // OLoRA on NF4: the residual re-quantized
  };
  std::map<std::string, at::Tensor> copies;  // modules_to_save
  for (const auto& module : s.modules_to_save) {
    if (module != "lm_head" && module != "model.embed_tokens")
      throw Error("E_ADAPTER", "adapter '" + s.name + "': modules_to_save supports lm_head and model.embed_tokens, not '" + module + "'");
    const at::Tensor& base = module == "lm_head" ? model.lm_head_weight(nullptr) : model.embed_tokens_weight(nullptr);
    copies[module] = base.detach().clone().set_requires_grad(true);
  }
  std::vector<Made> made;
  for (const auto& path : s.targets) {
    LoraLinear* lin = find_linear(model, path);
    if (!lin) throw Error("E_ADAPTER", "adapter '" + s.name + "': no linear module named '" + path + "'");
    const QuantizedWeight* quant = lin->quantized();
    if (rewrites && quant && (s.init != "olora" || quant->kind() != QuantKind::kNf4))
      // PEFT's pissa_init raises on a quantized weight too (OLoRA on NF4 is re-quantized below, as PEFT does)
      throw Error("E_ADAPTER", "adapter '" + s.name + "': init '" + s.init + "' rewrites the base weight of " + path + ", which is quantized (" +
                                   quant_kind_name(quant->kind()) + "); load the model unquantized to initialise it (as PEFT requires" +
                                   (s.init == "olora" ? "; OLoRA works on an NF4 base" : "") + ")");
    if (rewrites && !lin->adapters().empty())
      throw Error("E_ADAPTER", "adapter '" + s.name + "': init '" + s.init + "' rewrites the base weight of " + path +
                                   ", which other adapters already use; attach it alone");
    const int64_t in = lin->in_features(), out = lin->out_features();
    const double scaling = lora_scaling(s);
    // a quantized base: its dequantized weight, the residual kept in fp32 for re-quantizing
    at::Tensor base_weight = !rewrites ? at::Tensor() : quant ? lin->dense_weight().to(at::kFloat) : lin->dense_weight();
    LoraInit init = lora_init(s.init, base_weight, in, out, s.rank, scaling, gen);
    std::shared_ptr<const QuantizedWeight> requantized;
    if (init.residual.defined() && quant) {
      // PEFT's olora_init on a bitsandbytes 4-bit weight: Params4bit(residual, compress_statistics as before)
      requantized = std::make_shared<const QuantizedWeight>(quantize_nf4(init.residual, quant->nf4().block_size, quant->nf4().double_quant));
    }
    LoraWeights w;
    w.A = init.A.to(model.device(), s.dtype).set_requires_grad(true);
    w.B = init.B.to(model.device(), s.dtype).set_requires_grad(true);
    w.scaling = scaling;
    w.dropout = s.dropout;
    if (s.use_dora) {
      // PEFT's DoraLinearLayer.update_layer: m = ||W + scaling B A|| per output row (W dequantized
      // for a quantized base; the residual after PiSSA/OLoRA), in fp32 like the LoRA weights
      at::Tensor lora_weight = at::matmul(w.B, w.A);
      at::Tensor base = requantized ? requantized->dequantize(lin->dtype()) : init.residual.defined() ? init.residual : lin->dense_weight();
      w.magnitude = dora_weight_norm(base.to(w.A.device()), lora_weight, w.scaling).to(at::kFloat).contiguous();
      w.magnitude.set_requires_grad(true);
    }
    made.push_back({lin, std::move(w), requantized ? at::Tensor() : init.residual, requantized});
  }
  for (auto& m : made) {
    if (m.requantized) m.lin->replace_quantized_base(m.requantized);
    else if (m.residual.defined()) m.lin->mutable_weight() = m.residual.to(m.lin->weight().device()).contiguous();
    m.lin->adapters()[s.name] = std::move(m.w);
  }
  if (!copies.empty()) model.module_copies()[s.name] = std::move(copies);
  if (rewrites) model.regroup_projections();  // the residuals replaced fused weights: fuse them again
}

void delete_adapter(CausalLM& model, const std::string& name) {
  if (!has_adapter(model, name)) throw Error("E_ADAPTER", "no adapter named '" + name + "'");
  for (auto& [path, lin] : model.named_linears()) {
    auto it = lin->adapters().find(name);
    if (it == lin->adapters().end()) continue;
    if (it->second.merged) lin->unmerge(name);
    lin->adapters().erase(it);
  }
  model.module_copies().erase(name);
  auto& active = model.active_adapters();
  active.erase(std::remove(active.begin(), active.end(), name), active.end());
}

std::vector<std::pair<std::string, at::Tensor>> adapter_tensors(CausalLM& model, const std::string& name) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [path, lin] : model.named_linears()) {
    auto it = lin->adapters().find(name);
    if (it == lin->adapters().end()) continue;
    out.emplace_back(path + ".lora_A.weight", it->second.A);
    out.emplace_back(path + ".lora_B.weight", it->second.B);
    // PEFT's file key for DoRA's magnitude (its parameter lora_magnitude_vector.<name>.weight)
    if (it->second.magnitude.defined()) out.emplace_back(path + ".lora_magnitude_vector", it->second.magnitude);
  }
  auto copies = model.module_copies().find(name);
  if (copies != model.module_copies().end())
    for (auto& [module, t] : copies->second) out.emplace_back(module + ".weight", t);
  if (out.empty()) throw Error("E_ADAPTER", "no adapter named '" + name + "'");
  return out;
}

void set_adapter_tensor(CausalLM& model, const std::string& name, const std::string& key, const at::Tensor& value) {
  for (auto& [k, t] : adapter_tensors(model, name)) {
    if (k != key) continue;
    if (t.sizes() != value.sizes())
      throw Error("E_SHAPE", "adapter tensor '" + key + "' has shape " + shape_string(value.sizes()) + " but the model needs " + shape_string(t.sizes()));
    at::NoGradGuard no_grad;
    t.copy_(value);
    return;
  }
  throw Error("E_ADAPTER", "adapter '" + name + "' has no tensor '" + key + "' (does it target this module?)");
}

NamedTensors adapter_state(CausalLM& model, const std::string& name, bool grads) {
  NamedTensors out;
  for (auto& [key, t] : adapter_tensors(model, name)) {
    at::Tensor v = grads ? t.grad() : t.detach();
    if (!v.defined()) v = at::zeros_like(t);
    out.emplace_back(key, v.to(at::kCPU, at::kFloat).contiguous());
  }
  return out;
}

void set_adapter_state(CausalLM& model, const std::string& name, const NamedTensors& entries) {
  auto live = adapter_tensors(model, name);
  for (const auto& [key, value] : entries) {
    auto it = std::find_if(live.begin(), live.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == live.end()) throw Error("E_ADAPTER", "adapter '" + name + "' has no tensor '" + key + "'");
    if (it->second.sizes() != value.sizes())
      throw Error("E_SHAPE", "adapter tensor '" + key + "' has shape " + shape_string(value.sizes()) + " but the model needs " +
                                 shape_string(it->second.sizes()));
  }
  for (const auto& [key, value] : entries) set_adapter_tensor(model, name, key, value);
}

void combine_adapters(CausalLM& model, const std::string& target, const std::vector<CombinePart>& parts, const std::string& type) {
  if (parts.empty()) throw Error("E_OPTION", "combine needs at least one adapter");
  if (type != "linear" && type != "cat") throw Error("E_OPTION", "combinationType must be 'linear' or 'cat', got '" + type + "'");
  at::NoGradGuard no_grad;
  for (auto& [path, lin] : model.named_linears()) {
    auto out = lin->adapters().find(target);
    if (out == lin->adapters().end()) continue;
    std::vector<at::Tensor> As, Bs;  // [r_i, in], [out, r_i], scaled
    for (const auto& part : parts) {
      auto it = lin->adapters().find(part.adapter);
      if (it == lin->adapters().end()) throw Error("E_ADAPTER", "combine: adapter '" + part.adapter + "' does not target " + path);
      if (it->second.magnitude.defined()) throw Error("E_ADAPTER", "combine: '" + part.adapter + "' is a DoRA adapter; DoRA adapters cannot be combined (as in PEFT)");
      const double ws = part.weight * it->second.scaling;
      if (type == "linear") {
        // sqrt(|w s|) on both sides and the sign on A only, as PEFT: a negative weight subtracts
        // an adapter instead of taking sqrt of a negative number.
        const double f = std::sqrt(std::abs(ws));
        As.push_back(it->second.A * (ws < 0 ? -f : f));
        Bs.push_back(it->second.B * f);
      } else {
        As.push_back(it->second.A * ws);
        Bs.push_back(it->second.B);
      }
    }
    at::Tensor A = type == "linear" ? at::stack(As).sum(0) : at::cat(As, 0);  // [r, in]
    at::Tensor B = type == "linear" ? at::stack(Bs).sum(0) : at::cat(Bs, 1);  // [out, r]
    if (A.sizes() != out->second.A.sizes() || B.sizes() != out->second.B.sizes())
      throw Error("E_SHAPE", "combine: adapter '" + target + "' has rank " + std::to_string(out->second.A.size(0)) + " at " + path +
                                 " but the combination has rank " + std::to_string(A.size(0)));
    out->second.A.copy_(A);
    out->second.B.copy_(B);
  }
}

void merge_adapter(CausalLM& model, const std::string& name) {
  if (!has_adapter(model, name)) throw Error("E_ADAPTER", "no adapter named '" + name + "'");
  at::NoGradGuard no_grad;
  auto linears = model.named_linears();
  // Check every delta first so a refused merge leaves no layer half-merged.
  for (auto& [path, lin] : linears)
    if (lin->adapters().count(name) && !at::isfinite(lin->delta(name)).all().item<bool>())
      throw Error("E_LORA_MERGE", "adapter '" + name + "' has non-finite values in " + path + "; refusing to merge it");
  bool into_quantized = false;
  for (auto& [path, lin] : linears)
    if (lin->adapters().count(name)) {
      into_quantized = into_quantized || lin->is_quantized();
      lin->merge(name);
    }
  model.regroup_projections();
  if (into_quantized)
    model.add_warning("adapter '" + name + "' was merged into a quantized (" + std::string(quant_kind_name(model.quantization())) +
                      ") base: each merged layer was dequantized and is now dense in the compute dtype; "
                      "quantizing the merged model again changes its outputs");
}

void unmerge_adapter(CausalLM& model, const std::string& name) {
  if (!has_adapter(model, name)) throw Error("E_ADAPTER", "no adapter named '" + name + "'");
  at::NoGradGuard no_grad;
  for (auto& [path, lin] : model.named_linears())
    if (lin->adapters().count(name)) lin->unmerge(name);
  model.regroup_projections();
}

void merge_and_unload(CausalLM& model, const std::string& name) {
  auto copies = model.module_copies().find(name);
  const bool has_copies = copies != model.module_copies().end();
  if (has_copies && model.config().tie_word_embeddings)  // checked before anything is merged
    throw Error("E_ADAPTER", "adapter '" + name + "' holds a trained copy of " + copies->second.begin()->first +
                                 " (modules_to_save); merging it into a model with tied embeddings would untie lm_head from embed_tokens");
  merge_adapter(model, name);
  if (has_copies) {
    at::NoGradGuard no_grad;
    for (auto& [module, t] : copies->second) model.adopt_module_copy(module, t);  // PEFT: the copy replaces the module
    model.module_copies().erase(copies);
  }
  for (auto& [path, lin] : model.named_linears()) {
    lin->adapters().erase(name);
    lin->drop_quantized_base();  // the merge is permanent: the dense merged weight replaces it
  }
  auto& active = model.active_adapters();
  active.erase(std::remove(active.begin(), active.end(), name), active.end());
}

}  // namespace lorafit
