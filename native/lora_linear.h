// A frozen linear layer (the base model's weight) with any number of named LoRA adapters.
//   y = x W^T + b + sum_{active a} scaling_a * (dropout(x) A_a^T) B_a^T
// W: [out, in] frozen, stored dense (fp32/bf16/fp16) or quantized (NF4 / int8, QLoRA), in which
// case it is dequantized on the fly to the compute dtype and never kept dense (quant_linear.h).
// A: [r, in], B: [out, r] trainable (fp32 by default, as PEFT keeps them).
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "forward_context.h"
#include "quant_linear.h"

namespace lorafit {

struct LoraWeights {
  at::Tensor A;          // [r, in]
  at::Tensor B;          // [out, r]
  double scaling = 1.0;  // alpha / r, or alpha / sqrt(r) for rsLoRA
  double dropout = 0.0;
  bool merged = false;   // its delta is folded into the base weight
  // DoRA (PEFT's use_dora): the trained magnitude m [out], fp32; undefined for plain LoRA. The
  // layer computes m / ||W + scaling B A||_row * (W + scaling B A) x, the norm detached.
  at::Tensor magnitude;
  at::Tensor merged_factor;  // DoRA, while merged: m / norm at merge time [out] (unmerge divides it out)
};

// DoRA's row norm ||W + scaling * lora_weight||_2 over each output row: [out, in] -> [out]
// (PEFT's DoraLinearLayer.get_weight_norm).
at::Tensor dora_weight_norm(const at::Tensor& weight, const at::Tensor& lora_weight, double scaling);

// The dtype LoRA's matmuls run in for an input of dtype `input` and LoRA weights of dtype `lora`.
at::ScalarType lora_compute_dtype(at::ScalarType input, at::ScalarType lora);
// LoRA dropout of the input h (training only), with the context's generator.
at::Tensor lora_dropout(const at::Tensor& h, double p, const ForwardContext& ctx);

class LoraLinear {
 public:
  LoraLinear() = default;
  LoraLinear(at::Tensor weight, at::Tensor bias)
      : weight_(std::move(weight)), bias_(std::move(bias)), dtype_(weight_.scalar_type()) {}
  // A quantized base; `dtype` is the compute dtype (inputs, outputs, bias, merged weight).
  LoraLinear(std::shared_ptr<const QuantizedWeight> q, at::Tensor bias, at::ScalarType dtype)
      : quant_(std::move(q)), bias_(std::move(bias)), dtype_(dtype) {}

  at::Tensor forward(const at::Tensor& x, const ForwardContext& ctx) const;  // x: [..., in] -> [..., out]
  at::Tensor base_forward(const at::Tensor& x) const;  // the frozen part alone: x W^T + b

  int64_t in_features() const { return quant_ && !weight_.defined() ? quant_->shape()[1] : weight_.size(1); }
  int64_t out_features() const { return quant_ && !weight_.defined() ? quant_->shape()[0] : weight_.size(0); }
  at::ScalarType dtype() const { return dtype_; }
  // The dense weight; undefined while the base is quantized and nothing is merged into it.
  const at::Tensor& weight() const { return weight_; }
  at::Tensor& mutable_weight() { return weight_; }
  // The weight as used in forward, dense in the compute dtype (a fresh dequantized copy when quantized).
  at::Tensor dense_weight() const { return weight_.defined() ? weight_ : quant_->dequantize(dtype_); }
  const at::Tensor& bias() const { return bias_; }
  at::Tensor& mutable_bias() { return bias_; }

  // The quantized base, or null. While an adapter is merged into a quantized base the layer
  // computes with the dense merged weight; unmerging everything returns to the exact quantized base.
  const QuantizedWeight* quantized() const { return quant_.get(); }
  bool is_quantized() const { return quant_ && !weight_.defined(); }
  // Makes a merge permanent (merge_and_unload): the quantized base is dropped, the layer is dense.
  void drop_quantized_base();
  // A new quantized base (OLoRA's re-quantized residual); only while nothing is merged.
  void replace_quantized_base(std::shared_ptr<const QuantizedWeight> q) { quant_ = std::move(q); }

  std::map<std::string, LoraWeights>& adapters() { return adapters_; }
  const std::map<std::string, LoraWeights>& adapters() const { return adapters_; }
  // scaling * B @ A in the compute dtype: [out, in]
  at::Tensor delta(const std::string& adapter) const;
  void merge(const std::string& adapter);
  void unmerge(const std::string& adapter);

 private:
  at::Tensor dora_output(const LoraWeights& a, const at::Tensor& h, const at::Tensor& y, bool dropped) const;
  at::Tensor weight_;
  std::shared_ptr<const QuantizedWeight> quant_;
  at::Tensor bias_;
  at::ScalarType dtype_ = at::kFloat;
  std::map<std::string, LoraWeights> adapters_;
};

}  // namespace lorafit
