#include "lora_linear.h"

#include "error.h"

namespace lorafit {

at::Tensor LoraLinear::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  at::Tensor y;
  if (is_quantized()) {
    y = quantized_linear(x, *quant_);  // dequantized on the fly, not kept (quant_linear.h)
    if (bias_.defined()) y = y + bias_;
  } else {
    y = at::linear(x, weight_, bias_);
  }
  if (!ctx.active_adapters || adapters_.empty()) return y;
  const auto out_dtype = y.scalar_type();
  for (const auto& name : *ctx.active_adapters) {
    auto it = adapters_.find(name);
    if (it == adapters_.end() || it->second.merged) continue;
    const LoraWeights& a = it->second;
    // As PEFT: the input is cast to the LoRA weights' dtype, the sum is cast back at the end.
    at::Tensor h = x.to(a.A.scalar_type());
    if (ctx.training && a.dropout > 0) {
      // inverted dropout with the caller's generator: keep with probability 1-p, scale by 1/(1-p)
      // The caller's CPU generator makes dropout reproducible on CPU; other devices use their default one.
      at::Tensor keep = h.is_cpu() ? at::empty_like(h).bernoulli_(1.0 - a.dropout, ctx.generator) : at::empty_like(h).bernoulli_(1.0 - a.dropout);
      h = h * keep / (1.0 - a.dropout);
    }
    if (a.magnitude.defined()) {
      y = y + dora_output(a, h, y, ctx.training && a.dropout > 0);
      continue;
    }
    y = y + at::linear(at::linear(h, a.A), a.B) * a.scaling;
  }
  return y.to(out_dtype);
}

at::Tensor dora_weight_norm(const at::Tensor& weight, const at::Tensor& lora_weight, double scaling) {
  at::Tensor w = weight + lora_weight * scaling;  // type promotion as PEFT's: bf16 + fp32 -> fp32
  return at::linalg_vector_norm(w, 2, at::IntArrayRef{1}, false, c10::nullopt).to(w.scalar_type());
}

// PEFT's DoraLinearLayer.forward: what DoRA adds on top of the running output y.
//   h: the input in the LoRA dtype (dropout applied when `dropped`); y: the output so far.
at::Tensor LoraLinear::dora_output(const LoraWeights& a, const at::Tensor& h, const at::Tensor& y, bool dropped) const {
  at::Tensor weight = dense_weight().to(h.scalar_type());                 // [out, in]
  at::Tensor lora_weight = at::matmul(a.B, a.A).detach();                // [out, in]
  // DoRA section 4.3: the norm is treated as a constant (no gradient through it)
  at::Tensor norm = dora_weight_norm(weight, lora_weight, a.scaling).detach();  // [out]
  at::Tensor scale = a.magnitude / norm;                                 // [out], broadcast over [..., out]
  at::Tensor lora = at::linear(at::linear(h, a.A), a.B);                 // [..., out]
  // PEFT reuses the layer's running output (minus the bias) unless dropout changed the input.
  at::Tensor base = dropped ? at::linear(h, weight) : (bias_.defined() ? y - bias_ : y);
  return (scale - 1) * base + scale * lora * a.scaling;
}

at::Tensor LoraLinear::delta(const std::string& name) const {
  const LoraWeights& a = adapters_.at(name);
  return (at::matmul(a.B.detach(), a.A.detach()) * a.scaling).to(dtype_);
}

void LoraLinear::merge(const std::string& name) {
  LoraWeights& a = adapters_.at(name);
  if (a.merged) return;
  at::Tensor d = delta(name);
  if (!at::isfinite(d).all().item<bool>())
    throw Error("E_LORA_MERGE", "adapter '" + name + "' has non-finite weights; refusing to merge it into the base model");
  // A quantized base is dequantized to the compute dtype; the merged layer is dense.
  at::Tensor base = weight_.defined() ? weight_ : quant_->dequantize(dtype_);
  if (a.magnitude.defined()) {
    // PEFT's DoraLinearVariant.merge: W' = m / ||W + delta||_row * (W + delta), the norm in the
    // weight's dtype; the factor is kept, since unmerging cannot recompute it from W'.
    at::Tensor norm = dora_weight_norm(base, d, 1.0).detach();
    a.merged_factor = a.magnitude.detach() / norm;
    weight_ = (a.merged_factor.view({-1, 1}) * (base + d)).to(dtype_);
  } else {
    weight_ = base + d;
  }
  a.merged = true;
}

void LoraLinear::unmerge(const std::string& name) {
  LoraWeights& a = adapters_.at(name);
  if (!a.merged) return;
  a.merged = false;
  bool any_merged = false;
  for (const auto& [n, w] : adapters_) any_merged = any_merged || w.merged;
  // Back to the exact quantized base once nothing is merged (not a subtraction's rounding).
  if (quant_ && !any_merged) weight_ = at::Tensor();
  else if (a.magnitude.defined()) weight_ = (weight_ / a.merged_factor.view({-1, 1}) - delta(name)).to(dtype_);
  else weight_ = weight_ - delta(name);
  a.merged_factor = at::Tensor();
}

void LoraLinear::drop_quantized_base() {
  if (quant_ && weight_.defined()) quant_.reset();
}

}  // namespace lorafit
