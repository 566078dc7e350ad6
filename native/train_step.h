// One optimizer step's worth of forward/backward: loss and gradients over several micro-batches,
// normalised by the token count of the whole step, so that accumulation over micro-batches of
// different lengths gives exactly the gradient of the whole batch.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "causal_lm.h"

namespace lorafit {

struct MicroBatch {
  at::Tensor input_ids;       // [B, T] int64
  at::Tensor labels;          // [B, T] int64, -100 = not counted
  at::Tensor attention_mask;  // [B, T] or undefined
  // Padding-free / packed: lengths of the examples laid end to end over the B*T tokens (see
  // ForwardOptions::segments). The label of each segment's first token is not counted (the token
  // before it belongs to another example), exactly as the shift drops a row's first label.
  std::vector<int64_t> segments;
};

// mb.labels with -100 at the first token of every segment (the labels themselves if no segments).
at::Tensor effective_labels(const MicroBatch& mb);

struct StepResult {
  double loss = 0;       // mean CE over the step's counted tokens (loss_sum / the normaliser)
  double loss_sum = 0;   // summed CE of this process's micro-batches
  int64_t tokens = 0;    // counted (label) tokens
  double grad_norm = 0;  // L2 norm of all trainable gradients
};

// The trainable tensors: every base weight in full-parameter mode, else the LoRA weights of the
// active adapters.
std::vector<at::Tensor> trainable_parameters(CausalLM& model);

// Zeroes the gradients of `params`, then accumulates d(loss)/d(params) over `batches`.
// `generator` drives LoRA dropout (training mode). `normaliser`: the token count the loss is
// divided by; 0: the batches' own count. Data parallelism passes the global count of the step
// (then `batches` may hold no labelled token, or be empty).
StepResult accumulate_gradients(CausalLM& model, const std::vector<MicroBatch>& batches, const std::vector<at::Tensor>& params,
                                const at::Generator& generator, bool gradient_checkpointing = false, int64_t normaliser = 0);

// The label tokens `batches` count in the loss (after the shift and the segment starts).
int64_t count_step_tokens(const std::vector<MicroBatch>& batches);

// accumulate_gradients over the trainable tensors (the active adapters', or every weight in
// full-training mode) with LoRA dropout seeded by `dropout_seed`: gradients, no update.
// Error(E_ADAPTER) when nothing is trainable.
StepResult loss_and_grad(CausalLM& model, const std::vector<MicroBatch>& batches, uint64_t dropout_seed, bool gradient_checkpointing);

// Loss without gradients (evaluation): {sum of CE, token count}.
std::pair<double, int64_t> evaluate_loss(CausalLM& model, const std::vector<MicroBatch>& batches);

double grad_norm(const std::vector<at::Tensor>& params);

}  // namespace lorafit
