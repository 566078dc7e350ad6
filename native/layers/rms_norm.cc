#include "layers/rms_norm.h"

namespace lorafit {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, bool gemma_style) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (gemma_style) return (h * (weight.to(at::kFloat) + 1.0)).to(x.scalar_type());
  return weight * h.to(x.scalar_type());
}

}  // namespace lorafit
