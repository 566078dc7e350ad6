#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace lorafit {

// Causal self-attention within each segment of one packed row, on the CPU: one kernel forward and
// one backward, in place of the ~10 small matmuls, softmaxes, copies and cats per segment of the
// eager form (each of which pays oneDNN's per-call cost, which dominates at ~100 tokens).
//   q: [1, H, T, D]; k, v: [1, KV, T, D], any strides with D contiguous. H is a multiple of KV:
//   the H / KV query heads of a group share its kv head (HF's repeat_kv). segments: lengths
//   summing to T; query i of a segment sees keys 0..i of the same segment.
// -> [1, T, H, D] (the heads merge into [1, T, H * D] without a copy).
// Arithmetic in fp32 throughout, only the output (and the gradients) rounded to the input dtype,
// as SDPA's CPU kernel (transformers' default attention) computes; not as its eager attention,
// which rounds the scores and probabilities to bf16 as well.
at::Tensor segment_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const std::vector<int64_t>& segments, double scale);

// Whether segment_attention takes these inputs: CPU, fp32/bf16/fp16, head_dim 16/32/64/128/256. Debugging aid:
// LORAFIT_SEGMENT_ATTENTION=0 turns it off (the eager form runs).
bool segment_attention_supported(const at::Tensor& q);

}  // namespace lorafit
