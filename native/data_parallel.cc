#include "data_parallel.h"

#include <ATen/core/grad_mode.h>

#include <chrono>

#include "error.h"

namespace lorafit {

int64_t global_token_count(GradientReducer& reducer, const std::vector<MicroBatch>& batches) {
  std::vector<double> count{static_cast<double>(count_step_tokens(batches))};
  reducer.all_reduce_sum(count);
  const auto total = static_cast<int64_t>(count[0]);
  if (total == 0) throw Error("E_INPUT", "the step's batches have no labelled tokens on any rank (every label is -100 after the shift)");
  return total;
}

double reduce_step(GradientReducer& reducer, const std::vector<at::Tensor>& params, int64_t global_tokens, StepResult& result) {
  const auto t0 = std::chrono::steady_clock::now();
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  reducer.all_reduce_sum(grads);
  std::vector<double> loss{result.loss_sum};
  reducer.all_reduce_sum(loss);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  result.loss_sum = loss[0];
  result.loss = loss[0] / static_cast<double>(global_tokens);
  result.tokens = global_tokens;
  result.grad_norm = grad_norm(params);
  return ms;
}

}  // namespace lorafit
