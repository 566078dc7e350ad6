#include "layers/mlp.h"

#include "layers/swiglu.h"

namespace lorafit {

at::Tensor Mlp::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  if (act_ == "silu" && gate_up.grouped({&gate_proj, &up_proj}, ctx)) {
    at::Tensor joined = gate_up.joined_forward({&gate_proj, &up_proj}, x, ctx);  // [B, T, 2 intermediate]
    if (swiglu_supported(joined)) return down_proj.forward(swiglu(joined), ctx);
    std::vector<at::Tensor> gu = joined.chunk(2, -1);
    return down_proj.forward(at::silu(gu[0]) * gu[1], ctx);
  }
  std::vector<at::Tensor> gu = gate_up.forward({&gate_proj, &up_proj}, x, ctx);  // [B, T, intermediate] each
  at::Tensor g = gu[0];
  if (act_ == "silu") g = at::silu(g);
  else if (act_ == "gelu_pytorch_tanh") g = at::gelu(g, "tanh");
  else g = at::gelu(g);
  return down_proj.forward(g * gu[1], ctx);
}

}  // namespace lorafit
