#include "layers/mlp.h"

namespace lorafit {

at::Tensor Mlp::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  at::Tensor g = gate_proj.forward(x, ctx);  // [B, T, intermediate]
  if (act_ == "silu") g = at::silu(g);
  else if (act_ == "gelu_pytorch_tanh") g = at::gelu(g, "tanh");
  else g = at::gelu(g);
  return down_proj.forward(g * up_proj.forward(x, ctx), ctx);
}

}  // namespace lorafit
