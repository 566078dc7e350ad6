// A frozen linear layer (the base model's weight) with any number of named LoRA adapters.
//   y = x W^T + b + sum_{active a} scaling_a * (dropout(x) A_a^T) B_a^T
// W: [out, in] frozen; A: [r, in], B: [out, r] trainable (fp32 by default, as PEFT keeps them).
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "forward_context.h"

namespace lorafit {

struct LoraWeights {
  at::Tensor A;          // [r, in]
  at::Tensor B;          // [out, r]
  double scaling = 1.0;  // alpha / r, or alpha / sqrt(r) for rsLoRA
  double dropout = 0.0;
  bool merged = false;   // its delta is folded into the base weight
};

class LoraLinear {
 public:
  LoraLinear() = default;
  LoraLinear(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}

  at::Tensor forward(const at::Tensor& x, const ForwardContext& ctx) const;  // x: [..., in] -> [..., out]

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  const at::Tensor& weight() const { return weight_; }
  at::Tensor& mutable_weight() { return weight_; }
  const at::Tensor& bias() const { return bias_; }

  std::map<std::string, LoraWeights>& adapters() { return adapters_; }
  const std::map<std::string, LoraWeights>& adapters() const { return adapters_; }
  // scaling * B @ A in the base weight's dtype: [out, in]
  at::Tensor delta(const std::string& adapter) const;
  void merge(const std::string& adapter);
  void unmerge(const std::string& adapter);

 private:
  at::Tensor weight_;
  at::Tensor bias_;
  std::map<std::string, LoraWeights> adapters_;
};

}  // namespace lorafit
