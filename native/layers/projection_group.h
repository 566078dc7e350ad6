// Projections that read the same input (q/k/v, gate/up), computed together: one GEMM over their
// concatenated frozen weights. LoRA stays per projection, under PEFT's names: on the CPU each
// member's update goes into its columns of that output through lorafit's kernels (lora_delta.h);
// elsewhere, per adapter, one GEMM for the stacked A's and one for a block-diagonal B, since at
// SmolLM2's sizes (~200 tokens a step, rank 8) rank-8 GEMMs one by one cost about as much as the
// frozen ones (a torch profile of HF + PEFT by shape).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "forward_context.h"
#include "lora_linear.h"

namespace lorafit {

class ProjectionGroup {
 public:
  ProjectionGroup() = default;
  // Concatenates the members' dense frozen weights (and biases) into one tensor and makes each
  // member's weight a row view of it, so the model holds no second copy. Quantized members, or
  // members of mixed dtypes or with mixed biases, or trained weights (full-parameter training), are
  // left as they are (the group stays unfused).
  static ProjectionGroup fuse(const std::vector<LoraLinear*>& members);

  // x: [..., in] -> one output per member, [..., out_i]. Falls back to each member's own forward
  // whenever grouping could change the result: a member's weight replaced or trained (merge,
  // full-parameter training), DoRA, or LoRA dropout while training.
  std::vector<at::Tensor> forward(const std::vector<const LoraLinear*>& members, const at::Tensor& x,
                                  const ForwardContext& ctx) const;

  // The grouped path's output before the split: x: [..., in] -> [..., sum out_i], the members'
  // columns side by side. Only where grouped() holds.
  at::Tensor joined_forward(const std::vector<const LoraLinear*>& members, const at::Tensor& x, const ForwardContext& ctx) const;

  // Whether forward would take the grouped path.
  bool grouped(const std::vector<const LoraLinear*>& members, const ForwardContext& ctx) const;
  // Whether the members' weights are still the views fuse() made (not replaced, not trained).
  bool intact(const std::vector<const LoraLinear*>& members) const;

 private:
  at::Tensor weight_;  // [sum out_i, in], the members' weights are views of it
  at::Tensor bias_;    // [sum out_i] or undefined
};

}  // namespace lorafit
