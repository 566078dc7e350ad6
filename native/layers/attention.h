#pragma once
#include <ATen/ATen.h>

#include "forward_context.h"
#include "hf_config.h"
#include "layers/projection_group.h"
#include "lora_linear.h"

namespace lorafit {

// Keys and values of earlier positions, one pair per layer: [B, n_kv, S_past, head_dim].
struct KVCache {
  std::vector<at::Tensor> keys, values;
  int64_t length = 0;  // positions already cached
};

class Attention {
 public:
  Attention(const ModelConfig& config, int64_t layer_index);

  // x: [B, T, hidden]; cos/sin: [B, T, head_dim]; bias: [B, 1, T, S] additive -> [B, T, hidden]
  // With ctx.segments (B = 1, no cache) `bias` is ignored: each segment attends causally to itself.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                     const ForwardContext& ctx) const;

  LoraLinear q_proj, k_proj, v_proj, o_proj;
  ProjectionGroup qkv;  // q/k/v as one GEMM (fuse_projections)
  // (Re)builds the group unless it is intact; after a merge or unmerge replaced the weights.
  void fuse_projections() {
    if (!qkv.intact({&q_proj, &k_proj, &v_proj})) qkv = ProjectionGroup::fuse({&q_proj, &k_proj, &v_proj});
  }
  bool projections_fused() const { return qkv.intact({&q_proj, &k_proj, &v_proj}); }
  bool sliding() const { return sliding_; }

 private:
  // q: [B, H, T, D], k/v: [B, H, S, D] (kv heads already repeated) -> [B, H, T, D]
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) const;
  // q: [1, H, n, D], k/v: [1, KV, n, D], one causal segment -> [1, H, n, D]; matmuls and an
  // fp32 softmax, the query heads of each kv head stacked (short segments on the CPU).
  at::Tensor attend_grouped_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) const;
  // The same over the segments of one packed row: block-diagonal causal attention. k/v: [1, KV, T, D].
  at::Tensor attend_segments(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segments) const;

  int64_t layer_;
  int64_t heads_, kv_heads_, head_dim_;
  double scale_;
  double softcap_;
  bool sliding_;
  int64_t window_;  // sliding window of the sliding layers (0: none)
};

}  // namespace lorafit
