#pragma once
#include <ATen/ATen.h>

#include "forward_context.h"
#include "hf_config.h"
#include "layers/projection_group.h"
#include "lora_linear.h"

namespace lorafit {

// Gated MLP: down(act(gate(x)) * up(x)); act = SiLU (SwiGLU) or tanh-approximated GELU (GeGLU, Gemma).
class Mlp {
 public:
  explicit Mlp(const ModelConfig& config) : act_(config.hidden_act) {}
  at::Tensor forward(const at::Tensor& x, const ForwardContext& ctx) const;  // [B, T, hidden] -> same

  LoraLinear gate_proj, up_proj, down_proj;
  ProjectionGroup gate_up;  // gate and up as one GEMM (fuse_projections)
  // (Re)builds the group unless it is intact; after a merge or unmerge replaced the weights.
  void fuse_projections() {
    if (!gate_up.intact({&gate_proj, &up_proj})) gate_up = ProjectionGroup::fuse({&gate_proj, &up_proj});
  }
  bool projections_fused() const { return gate_up.intact({&gate_proj, &up_proj}); }

 private:
  std::string act_;
};

}  // namespace lorafit
