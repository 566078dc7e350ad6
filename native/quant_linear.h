// quant_linear.h: a frozen base weight stored quantized (NF4 or int8) and the linear map through
// it that dequantizes on the fly.
//
// quantized_linear(x, w) = x @ dequantize(w)^T in x's dtype. It is a custom autograd function:
// forward dequantizes, multiplies and drops the dense weight; backward dequantizes again for
// grad_x = grad_y @ W. The autograd graph saves nothing but a pointer to the quantized weight, so
// no dense copy of any layer's weight outlives its own matmul (the QLoRA memory property). The
// weight itself gets no gradient; gradients flow to the input (and so to the LoRA weights).
// This is what bitsandbytes' matmul_4bit does on CPU when training (dequantize_4bit + linear):
// on the same state, forward and grad_x equal it bit for bit when both run the GEMM on the same
// number of threads (test/native/quant.test.ts), within 1e-5 x max|y| otherwise (fp32 sum order).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "quant.h"

namespace lorafit {

enum class QuantKind { kNone, kNf4, kInt8 };

const char* quant_kind_name(QuantKind k);  // "none" | "nf4" | "int8"

class QuantizedWeight {
 public:
  explicit QuantizedWeight(Nf4Weight w) : kind_(QuantKind::kNf4), nf4_(std::move(w)) {}
  explicit QuantizedWeight(Int8Weight w) : kind_(QuantKind::kInt8), int8_(std::move(w)) {}

  QuantKind kind() const { return kind_; }
  const std::vector<int64_t>& shape() const { return kind_ == QuantKind::kNf4 ? nf4_.shape : int8_.shape; }
  int64_t numel() const;
  // The dense weight [out, in] in `dtype` (for NF4, bit-exact with bitsandbytes' dequantize_4bit
  // of the same quant state).
  at::Tensor dequantize(at::ScalarType dtype) const;
  // Bytes needed to hold it (quant.h storage_bytes).
  int64_t storage_bytes() const;
  const Nf4Weight& nf4() const { return nf4_; }
  const Int8Weight& int8() const { return int8_; }

 private:
  QuantKind kind_;
  Nf4Weight nf4_;
  Int8Weight int8_;
};

// x: [..., in] -> [..., out] in x's dtype. `w` must outlive any autograd graph built here.
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& w);

}  // namespace lorafit
