#include "lora_linear.h"

#include "cpu_matmul.h"
#include "error.h"
#include "lora_delta.h"

namespace lorafit {

at::ScalarType lora_compute_dtype(at::ScalarType input, at::ScalarType lora) {
  // bf16 inputs stay bf16, as autocast runs LoRA's matmuls: no fp32 copy of the activations
  // (the fp32 A/B are cast, which is cheap at [r, in]; their gradients and optimizer state stay
  // fp32). Other inputs are cast to the LoRA dtype, as PEFT does.
  return input == at::kBFloat16 ? at::kBFloat16 : lora;
}

at::Tensor lora_dropout(const at::Tensor& h, double p, const ForwardContext& ctx) {
  if (!ctx.training || p <= 0) return h;
  // inverted dropout with the caller's generator: keep with probability 1-p, scale by 1/(1-p)
  // The caller's CPU generator makes dropout reproducible on CPU; other devices use their default one.
  at::Tensor keep = h.is_cpu() ? at::empty_like(h).bernoulli_(1.0 - p, ctx.generator) : at::empty_like(h).bernoulli_(1.0 - p);
  return h * keep / (1.0 - p);
}

at::Tensor LoraLinear::base_forward(const at::Tensor& x) const {
  if (!is_quantized()) return frozen_linear(x, weight_, bias_);
  at::Tensor y = quantized_linear(x, *quant_);  // dequantized on the fly, not kept (quant_linear.h)
  return bias_.defined() ? y + bias_ : y;
}

at::Tensor LoraLinear::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  if (!ctx.active_adapters || adapters_.empty()) return base_forward(x);
  // 2-D throughout, so that LoRA can accumulate into the frozen GEMM's own output: mm and addmm
  // save their inputs for backward, never their output, so writing into it in place is safe.
  // A quantized base's output comes from our own autograd function, and stays out of place.
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out_features();
  at::Tensor y = base_forward(x.reshape({-1, x.size(-1)}));  // [N, out]
  const bool accumulate_in_place = !is_quantized();
  const auto out_dtype = y.scalar_type();
  for (const auto& name : *ctx.active_adapters) {
    auto it = adapters_.find(name);
    if (it == adapters_.end() || it->second.merged) continue;
    const LoraWeights& a = it->second;
    if (a.magnitude.defined()) {
      // DoRA keeps PEFT's arithmetic exactly: the input cast to the LoRA dtype, the sum cast back.
      at::Tensor h = lora_dropout(x.reshape({-1, x.size(-1)}).to(a.A.scalar_type()), a.dropout, ctx);
      y = y + dora_output(a, h, y, ctx.training && a.dropout > 0);
      continue;
    }
    const auto dt = lora_compute_dtype(x.scalar_type(), a.A.scalar_type());
    at::Tensor h = lora_dropout(x.to(dt), a.dropout, ctx).reshape({-1, x.size(-1)});  // [N, in]
    if (accumulate_in_place && y.scalar_type() == dt && add_lora_supported(y, h, {{a.A, a.B, a.scaling, 0}})) {
      y = add_lora(y, h, {{a.A, a.B, a.scaling, 0}});  // the CPU kernels (lora_delta.h)
      continue;
    }
    at::Tensor down = at::mm(h, a.A.to(dt).t());                                      // [N, r]
    at::Tensor B = a.B.to(dt);                                                         // [out, r]
    if (y.scalar_type() == dt) {
      // y + scaling * down B^T as one GEMM that accumulates into y (no separate scale and add passes)
      y = accumulate_in_place ? y.addmm_(down, B.t(), 1, a.scaling) : at::addmm(y, down, B.t(), 1, a.scaling);
    } else {
      y = y + at::mm(down, B.t()) * a.scaling;  // PEFT's promotion (e.g. fp16 base, fp32 LoRA)
    }
  }
  return y.to(out_dtype).view(shape);
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
