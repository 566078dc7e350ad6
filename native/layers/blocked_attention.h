#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace lorafit {

// Causal self-attention within each segment of one packed row on the CPU, for rows with a segment
// longer than segment_attention's (> 256 tokens), in place of libtorch's CPU flash kernel (SDPA).
//
// Flash attention's scheme, each thread on its own tiles of 32 queries of one head: per chunk of
// 64 keys, the scores and the probabilities-times-values are two calls of libtorch's exported
// oneDNN ukernel (at::native::cpublas::brgemm, bf16 x bf16 -> fp32 or fp32), with an online
// softmax between them. The backward recomputes the scores from the saved log-sum-exp (memory
// O(T), as SDPA's: no [T, T] tensor is kept) and its products are ukernel calls as well; each
// thread sums its dK and dV apart, added at the end. The kv heads are never repeated (SDPA needs
// k and v copied to every query head). On the 0.5B shape (14 / 2 heads x 64, 512 tokens, 2 Zen 4
// cores) fwd+bwd took 11.36 ms against SDPA's 30.02 in bf16 (bench/cpp-probes/blocked-attention.cc,
// bench/results/2026-12-06-s10-cpp-probes.txt).
//   q: [1, H, T, D]; k, v: [1, KV, T, D], any strides. H is a multiple of KV: the H / KV query
//   heads of a group share its kv head (HF's repeat_kv). segments: lengths summing to T; query i
//   of a segment sees keys 0..i of the same segment.
// -> [1, T, H, D] (the heads merge into [1, T, H * D] without a copy).
// Arithmetic in fp32 (the scores exact products of the inputs, as SDPA's); in bf16 the
// probabilities and dS are rounded to bf16 for their products, as SDPA's CPU kernel rounds the
// probabilities; fp16 inputs run in fp32 (the ukernel's fp16 form needs AVX512-FP16).
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const std::vector<int64_t>& segments, double scale);

// Whether blocked_attention takes these inputs: CPU, fp32/bf16/fp16, 4-D (an even head_dim in
// bf16), and the ukernel runs on this CPU (tried once). Debugging aid and A/B switch:
// LORAFIT_BLOCKED_ATTENTION=0 turns it off (SDPA runs per segment, as before).
bool blocked_attention_supported(const at::Tensor& q);

}  // namespace lorafit
