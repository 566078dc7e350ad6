#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// The skinny products of LoRA on the CPU (one side is the rank r <= 64), fp32 accumulation.
// at::mm's fixed cost per call (oneDNN's per-call path with cold caches) is 3-5x the arithmetic
// at these sizes: ~280 us for a [310, 576] x [576, 8] bf16 product inside a training step, 60-75
// us in a tight loop of the same call (bench/mm-cold-probe.py, bench/README.md session 8).
//
// Operands are 2-D CPU tensors with dense rows (stride(1) == 1); "T" is fp32 or bf16.

// [M, R] fp32 = alpha * x [M, K] (T) . w [R, K]^T (fp32): x A^T (the LoRA down product) and g B.
at::Tensor rows_dot_rows(const at::Tensor& x, const at::Tensor& w, double alpha);

// c [M, N] (T) (+)= alpha * a [M, K] (fp32) . b [K, N] (fp32 or T), for small K:
// y += scaling * down B^T and dx += dDown A. `accumulate` false overwrites c.
void add_small_k(const at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate);

// [R, N] fp32 = alpha * a [K, R]^T (fp32) . b [K, N] (T), for small R (K the token count):
// the LoRA weight gradients dDown^T x and down^T g.
at::Tensor transposed_times(const at::Tensor& a, const at::Tensor& b, double alpha);

// Whether the kernels take this dtype (fp32, bf16) and device (CPU).
bool small_gemm_supported(const at::Tensor& t);

}  // namespace lorafit
