#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// RMSNorm as transformers computes it: normalise in fp32.
//   Llama/Qwen2/Mistral: weight * normed.to(x.dtype)
//   Gemma/Gemma2:        (normed * (1 + weight.float())).to(x.dtype)
// x: [..., hidden], weight: [hidden]
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, bool gemma_style);

}  // namespace lorafit
