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
    y = y + at::linear(at::linear(h, a.A), a.B) * a.scaling;
  }
  return y.to(out_dtype);
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
  weight_ = (weight_.defined() ? weight_ : quant_->dequantize(dtype_)) + d;
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
  else weight_ = weight_ - delta(name);
}

void LoraLinear::drop_quantized_base() {
  if (quant_ && weight_.defined()) quant_.reset();
}

}  // namespace lorafit
