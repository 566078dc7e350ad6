// Model-level LoRA operations: attach, inspect, load, merge and remove named adapters on the
// LoraLinear projections of a CausalLM. Keys are PEFT's, minus the "base_model.model." prefix:
//   model.layers.0.self_attn.q_proj.lora_A.weight  [r, in]
//   model.layers.0.self_attn.q_proj.lora_B.weight  [out, r]
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "causal_lm.h"

namespace lorafit {

// Every field comes from lib/ (lib/lora/lora-adapter.ts holds the defaults).
struct LoraSpec {
  std::string name;
  int64_t rank = 0;
  double alpha = 0;
  double dropout = 0;
  bool rslora = false;
  std::vector<std::string> targets;  // module paths, e.g. model.layers.0.self_attn.q_proj
  // "kaiming" (PEFT default) | "gaussian" | "pissa" | "pissa_niter_<N>" | "olora" | "none" (A and B
  // zero); pissa/olora replace the base weights by their residual (lora_init.h)
  std::string init;
  uint64_t seed = 0;
  bool use_dora = false;             // DoRA: a magnitude vector per module, initialised to ||W + scaling B A||_row
  at::ScalarType dtype = at::kFloat; // LoRA weights stay fp32 under a bf16 base, as PEFT keeps them
  // PEFT's modules_to_save: whole modules ("lm_head", "model.embed_tokens") the adapter holds a
  // fully trainable copy of, in the model's dtype (a deepcopy, as PEFT's ModulesToSaveWrapper)
  std::vector<std::string> modules_to_save;
};

double lora_scaling(const LoraSpec& spec);
void add_adapter(CausalLM& model, const LoraSpec& spec);
void delete_adapter(CausalLM& model, const std::string& name);
bool has_adapter(CausalLM& model, const std::string& name);
// (key, tensor) pairs in module order, then the modules_to_save copies ("lm_head.weight",
// "model.embed_tokens.weight", PEFT's file keys); the tensors are the live parameters.
std::vector<std::pair<std::string, at::Tensor>> adapter_tensors(CausalLM& model, const std::string& name);
// Copies `value` into the adapter's tensor `key`; Error(E_SHAPE / E_ADAPTER) names the key.
void set_adapter_tensor(CausalLM& model, const std::string& name, const std::string& key, const at::Tensor& value);
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
// Copies of the adapter's tensors (or of their gradients: zeros where none), CPU float32.
NamedTensors adapter_state(CausalLM& model, const std::string& name, bool grads);
// Replaces the adapter's tensors. Every entry is checked (known key, same shape) before any is
// written, so a bad file leaves the adapter as it was.
void set_adapter_state(CausalLM& model, const std::string& name, const NamedTensors& entries);

// Fills adapter `target` (already attached, scaling 1, on the same modules) with a combination of
// others, as PEFT's add_weighted_adapter, s_i being adapter i's scaling:
//   "linear": same rank; A = sum sign(w_i) sqrt(|w_i s_i|) A_i, B = sum sqrt(|w_i s_i|) B_i
//   "cat":    rank = sum r_i; A = concat_r(w_i s_i A_i), B = concat_r(B_i) (the exact sum of deltas)
struct CombinePart {
  std::string adapter;
  double weight = 0;
};
void combine_adapters(CausalLM& model, const std::string& target, const std::vector<CombinePart>& parts, const std::string& type);

void merge_adapter(CausalLM& model, const std::string& name);
void unmerge_adapter(CausalLM& model, const std::string& name);
// Folds the adapter into the base weights and removes it (PEFT's merge_and_unload).
void merge_and_unload(CausalLM& model, const std::string& name);

}  // namespace lorafit
