#pragma once
#include <ATen/ATen.h>

#include "forward_context.h"
#include "hf_config.h"
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
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                     const ForwardContext& ctx) const;

  LoraLinear q_proj, k_proj, v_proj, o_proj;
  bool sliding() const { return sliding_; }

 private:
  int64_t layer_;
  int64_t heads_, kv_heads_, head_dim_;
  double scale_;
  double softcap_;
  bool sliding_;
};

}  // namespace lorafit
