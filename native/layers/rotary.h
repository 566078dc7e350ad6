#pragma once
#include <ATen/ATen.h>

#include <utility>

#include "hf_config.h"

namespace lorafit {

// Rotary position embedding in transformers' "rotate_half" layout (not the interleaved one).
class Rotary {
 public:
  explicit Rotary(const ModelConfig& config);
  // position_ids: [B, T] int64 -> cos, sin: [B, T, head_dim] in `dtype`, on position_ids' device
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& position_ids, at::ScalarType dtype) const;
  const at::Tensor& inv_freq() const { return inv_freq_; }

 private:
  at::Tensor inv_freq_;  // [head_dim / 2] float32, on CPU
};

// x: [B, H, T, D]; cos/sin: [B, T, D]
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lorafit
