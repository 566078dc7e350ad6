#include "layers/decoder_layer.h"

#include "layers/rms_norm.h"

namespace lorafit {

at::Tensor DecoderLayer::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                                 const ForwardContext& ctx) const {
  const double eps = config_->rms_norm_eps;
  const bool gemma = config_->gemma_norm;
  at::Tensor h = self_attn.forward(rms_norm(x, input_layernorm, eps, gemma), cos, sin, bias, ctx);
  if (config_->sandwich_norms) {
    h = rms_norm(h, post_attention_layernorm, eps, gemma);
    at::Tensor r = x + h;
    at::Tensor m = mlp.forward(rms_norm(r, pre_feedforward_layernorm, eps, gemma), ctx);
    return r + rms_norm(m, post_feedforward_layernorm, eps, gemma);
  }
  at::Tensor r = x + h;
  return r + mlp.forward(rms_norm(r, post_attention_layernorm, eps, gemma), ctx);
}

}  // namespace lorafit
