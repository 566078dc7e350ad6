#pragma once
#include <ATen/ATen.h>

#include "layers/attention.h"
#include "layers/mlp.h"

namespace lorafit {

// Pre-norm transformer block. Gemma 2 adds "sandwich" norms around both sub-blocks.
class DecoderLayer {
 public:
  DecoderLayer(const ModelConfig& config, int64_t index) : self_attn(config, index), mlp(config), config_(&config) {}

  // x: [B, T, hidden]; bias: the additive mask for this layer's kind (full or sliding)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                     const ForwardContext& ctx) const;

  Attention self_attn;
  Mlp mlp;
  at::Tensor input_layernorm, post_attention_layernorm;
  at::Tensor pre_feedforward_layernorm, post_feedforward_layernorm;  // Gemma 2 only

 private:
  const ModelConfig* config_;
};

}  // namespace lorafit
