// AdamW over many fp32 CPU tensors as one parallel loop: each element's parameter, gradient and
// two moments are read once and written once, where aten's _fused_adamw_ runs one task per
// tensor (420 small tensors on SmolLM2's 7 projections, most of them a few thousand elements).
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace lorafit {

struct AdamwScalars {
  double beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  int64_t step = 0;          // after the increment: 1 on the first update
  double grad_scale = 1;     // the clipping coefficient, applied to each gradient as it is read
};

// True when every tensor is a dense contiguous fp32 CPU tensor (the kernel's only case).
bool adamw_kernel_applies(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                          const std::vector<at::Tensor>& exp_avg, const std::vector<at::Tensor>& exp_avg_sq);

// In place, per element, as torch.optim.AdamW(fused=True):
//   g = grad * grad_scale; p *= 1 - lr wd; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// lr[i] is params[i]'s learning rate (LoRA+ gives lora_B another one).
void adamw_kernel(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads, std::vector<at::Tensor>& exp_avg,
                  std::vector<at::Tensor>& exp_avg_sq, const std::vector<double>& lr, const AdamwScalars& s);

}  // namespace lorafit
