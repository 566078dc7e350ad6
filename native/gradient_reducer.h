// GradientReducer: what a data-parallel optimizer step needs from its process group, and nothing
// more (native/process_group.* is the c10d implementation; TrainState::step takes one, or none
// for a single process). Every rank must make the same calls in the same order.
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace lorafit {

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Sums `values` over all ranks, in place (one collective, float64).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  // Sums the tensors over all ranks, in place, in flattened buckets (one collective a bucket).
  virtual void all_reduce_sum(const std::vector<at::Tensor>& tensors) = 0;
};

}  // namespace lorafit
