#include "layers/mlp.h"

namespace lorafit {

at::Tensor Mlp::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  std::vector<at::Tensor> gu = gate_up.forward({&gate_proj, &up_proj}, x, ctx);  // [B, T, intermediate] each
  at::Tensor g = gu[0];
  if (act_ == "silu") g = at::silu(g);
  else if (act_ == "gelu_pytorch_tanh") g = at::gelu(g, "tanh");
  else g = at::gelu(g);
  return down_proj.forward(g * gu[1], ctx);
}

}  // namespace lorafit
