// Data parallelism inside one optimizer step (TrainState::step's hook): every rank runs its own
// micro-batches, the loss is normalised by the step's global label-token count, and the
// gradients are summed over the ranks once, after the micro-batches and before the global
// gradient norm, clipping and the update. So N ranks compute exactly the step one process would
// compute over the union of their micro-batches.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "gradient_reducer.h"
#include "train_step.h"

namespace lorafit {

// The label tokens of the step over all ranks (one all-reduce). Error(E_INPUT) if none.
int64_t global_token_count(GradientReducer& reducer, const std::vector<MicroBatch>& batches);

// Sums the gradients of `params` over the ranks (a rank without a gradient contributes zeros)
// and turns this rank's result into the global one: loss = global CE sum / global_tokens,
// tokens = global_tokens, grad_norm over the summed gradients. Returns the milliseconds spent
// in collectives.
double reduce_step(GradientReducer& reducer, const std::vector<at::Tensor>& params, int64_t global_tokens, StepResult& result);

}  // namespace lorafit
