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

struct LoraSpec {
  std::string name = "default";
  int64_t rank = 8;
  double alpha = 8;
  double dropout = 0;
  bool rslora = false;
  std::vector<std::string> targets;  // module paths, e.g. model.layers.0.self_attn.q_proj
  std::string init = "kaiming";      // "kaiming" (PEFT default) | "gaussian" | "none" (A and B zero)
  uint64_t seed = 0;
  at::ScalarType dtype = at::kFloat; // LoRA weights stay fp32 under a bf16 base, as PEFT keeps them
};

double lora_scaling(const LoraSpec& spec);
void add_adapter(CausalLM& model, const LoraSpec& spec);
void delete_adapter(CausalLM& model, const std::string& name);
bool has_adapter(CausalLM& model, const std::string& name);
// (key, tensor) pairs in module order; the tensors are the live parameters.
std::vector<std::pair<std::string, at::Tensor>> adapter_tensors(CausalLM& model, const std::string& name);
// Copies `value` into the adapter's tensor `key`; Error(E_SHAPE / E_ADAPTER) names the key.
void set_adapter_tensor(CausalLM& model, const std::string& name, const std::string& key, const at::Tensor& value);
void merge_adapter(CausalLM& model, const std::string& name);
void unmerge_adapter(CausalLM& model, const std::string& name);
// Folds the adapter into the base weights and removes it (PEFT's merge_and_unload).
void merge_and_unload(CausalLM& model, const std::string& name);

}  // namespace lorafit
