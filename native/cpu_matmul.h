// fp32 matmuls on the CPU through oneDNN, where libtorch sends them to MKL.
//
// libtorch computes an fp32 at::mm with MKL's sgemm, and a bf16 one with oneDNN. On AMD CPUs MKL
// runs its AVX2 code: on the Zen 5 EPYC of bench/README.md (session 9) sgemm reached ~170-200
// GFLOP/s on lorafit's shapes where oneDNN's AVX-512 brgemm, exact fp32 as well, reached 310-460
// (a new row count each call: 169 vs 314). libtorch's oneDNN entry point
// (at::native::mkldnn_matmul) is exported but not in its public headers, so it is looked up at
// run time; where it is missing (a libtorch built without oneDNN) everything stays on at::mm.
#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// (Not named matmul_out: argument-dependent lookup would pick at::matmul_out for a non-const out.)
// out = a b for 2-D tensors (any strides, dense along one dimension): oneDNN for fp32 CPU
// tensors when available and not switched off (LORAFIT_ONEDNN_FP32=0), at::mm_out otherwise.
void frozen_mm_out(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b);

// a [..., K] b [K, N] -> [..., N] (no autograd of its own), through frozen_mm_out.
at::Tensor rows_times(const at::Tensor& a, const at::Tensor& b);

// x [..., in] W^T (+ bias) for a weight [out, in] that takes no gradient (the frozen base): one
// autograd node whose forward and input-gradient backward (dx = dy W) both go through frozen_mm_out.
// A weight or bias that requires grad (full-parameter training) goes to at::linear.
at::Tensor frozen_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Whether frozen_mm_out takes the oneDNN path for tensors like `t` now.
bool onednn_fp32_applies(const at::Tensor& t);

}  // namespace lorafit
