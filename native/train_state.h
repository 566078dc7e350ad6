// TrainState: what one training run keeps between optimizer steps (the optimizer's moments and
// step count) for one target: an adapter's tensors, or every base weight (full-parameter
// training). The trainer owns it; the model knows nothing of it. step() is a whole optimizer step
// in one call: the micro-batches' forward/backward, one gradient-norm pass, the non-finite check,
// clipping and the update.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "causal_lm.h"
#include "gradient_reducer.h"
#include "optimizer.h"
#include "train_step.h"

namespace lorafit {

struct TrainStepOptions {
  double lr = 0;
  double max_grad_norm = 0;          // <= 0: no clipping
  uint64_t dropout_seed = 0;         // LoRA dropout's generator for this step
  bool gradient_checkpointing = false;
};

struct TrainStepResult {
  double loss = 0;          // mean CE over the step's counted tokens
  int64_t tokens = 0;       // counted (label) tokens
  double grad_norm = 0;     // before clipping
  bool clipped = false;
  bool applied = false;     // false: loss or gradient norm not finite, the weights are unchanged
  std::string non_finite_weight;  // when not applied: the first trained tensor that is itself non-finite ("" if none)
  int64_t step = 0;         // optimizer steps applied so far
  double reduce_ms = 0;     // data parallelism: milliseconds in the gradient/loss all-reduce
};

class TrainState {
 public:
  // target: an adapter name, or "" for every base weight (the model must be in full-training mode).
  TrainState(std::string target, OptimizerConfig config);
  ~TrainState();  // frees the loss buffers the steps kept (release_loss_buffers)
  TrainState(const TrainState&) = delete;
  TrainState& operator=(const TrainState&) = delete;

  // reducer: data parallelism (native/data_parallel.h): `batches` are this rank's share of the
  // step, and loss, token count and gradients become the global ones. nullptr: one process.
  TrainStepResult step(CausalLM& model, const std::vector<MicroBatch>& batches, const TrainStepOptions& options,
                       GradientReducer* reducer = nullptr);

  int64_t steps() const { return state_.step; }
  // The moments keyed "<tensor key>.exp_avg" / ".exp_avg_sq" (CPU float32); empty before the first step.
  std::vector<std::pair<std::string, at::Tensor>> entries(CausalLM& model) const;
  // Restores entries() output (a checkpoint). Every tensor must be present with its shape.
  void restore(CausalLM& model, int64_t step, const std::map<std::string, at::Tensor>& values);

 private:
  std::vector<std::pair<std::string, at::Tensor>> trainables(CausalLM& model) const;

  std::string target_;
  OptimizerConfig config_;
  OptimizerState state_;
};

}  // namespace lorafit
