#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// SwiGLU on the fused gate/up output, on the CPU: gu [..., 2 I] (gate columns, then up) ->
// silu(gate) * up [..., I], in one pass forward and one backward, whose gradient is the
// [..., 2 I] tensor the gate/up GEMM's backward takes (no split, no cat, no silu or product
// tensors kept). fp32 inside; in bf16 it rounds where transformers' act_fn(gate) * up does (the
// silu, then the product), and so does the backward (silu_backward's and mul's outputs).
at::Tensor swiglu(const at::Tensor& gate_up);

// CPU, fp32 or bf16, last dim even. Debugging aid: LORAFIT_SWIGLU_KERNEL=0 turns it off.
bool swiglu_supported(const at::Tensor& gate_up);

}  // namespace lorafit
