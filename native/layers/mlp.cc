#include "layers/mlp.h"

#include "layers/swiglu.h"

namespace lorafit {

at::Tensor Mlp::forward(const at::Tensor& x, const ForwardContext& ctx) const {
  std::vector<at::Tensor> gu;  // gate and up, [B, T, intermediate] each
  if (act_ == "silu" && gate_up.grouped({&gate_proj, &up_proj}, ctx)) {
    at::Tensor joined = gate_up.joined_forward({&gate_proj, &up_proj}, x, ctx);  // [B, T, 2 intermediate]
    if (swiglu_supported(joined)) return down_proj.forward(swiglu(joined), ctx);
    gu = joined.chunk(2, -1);
  } else {
    gu = gate_up.forward({&gate_proj, &up_proj}, x, ctx);
  }
  at::Tensor g = gu[0];
  if (act_ == "silu") g = at::silu(g);
  else if (act_ == "gelu_pytorch_tanh") g = at::gelu(g, "tanh");
  else g = at::gelu(g);
  return down_proj.forward(g * gu[1], ctx);
}

}  // namespace lorafit
