#include "quant_linear.h"

#include <torch/csrc/autograd/custom_function.h>

#include <ATen/core/grad_mode.h>

#include "cpu_matmul.h"

namespace lorafit {

const char* quant_kind_name(QuantKind k) {
  switch (k) {
    case QuantKind::kNf4: return "nf4";
    case QuantKind::kInt8: return "int8";
    default: return "none";
  }
}

int64_t QuantizedWeight::numel() const {
  int64_t n = 1;
  for (int64_t s : shape()) n *= s;
  return n;
}

at::Tensor QuantizedWeight::dequantize(at::ScalarType dtype) const {
  return kind_ == QuantKind::kNf4 ? dequantize_nf4(nf4_, dtype) : dequantize_int8(int8_, dtype);
}

int64_t QuantizedWeight::storage_bytes() const {
  return kind_ == QuantKind::kNf4 ? lorafit::storage_bytes(nf4_) : lorafit::storage_bytes(int8_);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Saves only a pointer to the quantized weight (an int in saved_data): no tensor of size
// [out, in] is kept for backward.
struct QuantLinearFn : public torch::autograd::Function<QuantLinearFn> {
  static at::Tensor forward(AutogradContext* ac, const at::Tensor& x, const QuantizedWeight* w) {
    ac->saved_data["w"] = reinterpret_cast<int64_t>(w);
    at::Tensor dense = w->dequantize(x.scalar_type());  // [out, in], freed on return
    return frozen_linear(x, dense, {});
  }

  static variable_list backward(AutogradContext* ac, variable_list grads) {
    const auto* w = reinterpret_cast<const QuantizedWeight*>(ac->saved_data["w"].toInt());
    const at::Tensor& gy = grads[0];                     // [..., out]
    at::Tensor dense = w->dequantize(gy.scalar_type());  // [out, in]
    return {rows_times(gy, dense), at::Tensor()};        // grad_x [..., in]; none for the weight
  }
};

}  // namespace

at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& w) {
  if (!at::GradMode::is_enabled() || !x.requires_grad()) {
    at::Tensor dense = w.dequantize(x.scalar_type());
    return frozen_linear(x, dense, {});
  }
  return QuantLinearFn::apply(x, &w);
}

}  // namespace lorafit
