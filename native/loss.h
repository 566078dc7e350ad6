// Masked causal-LM cross-entropy, shifted inside as transformers does: position t predicts
// labels[t + 1]; labels of -100 are ignored. Returns the SUM over counted tokens and the count,
// so that gradient accumulation can normalise by the token count of a whole optimizer step.
//
// Only the counted positions go through lm_head, in chunks, and the gradient with respect to the
// hidden states is computed in the same pass (a fused linear + cross-entropy): the [N, vocab]
// fp32 logits are never all alive at once and never kept for backward.
#pragma once
#include <ATen/ATen.h>

#include <utility>

namespace lorafit {

constexpr int64_t kIgnoreIndex = -100;

// hidden: [B, T, H] (final-normed), labels: [B, T] int64, weight: lm_head [V, H].
// softcap > 0 applies Gemma 2's final logit soft-capping. Returns {sum (fp32 scalar, autograd-
// connected to hidden and, if it requires grad, weight), token count}.
std::pair<at::Tensor, int64_t> masked_lm_loss_sum(const at::Tensor& hidden, const at::Tensor& labels, const at::Tensor& weight,
                                                  double softcap);
// Number of labels that count after the shift.
int64_t count_loss_tokens(const at::Tensor& labels);

// Frees the loss's CPU chunk buffers, which it keeps between calls (up to ~670 MB at a 152k
// vocabulary): at the end of a training run (TrainState) and when a model is disposed. Does not
// wait: while a loss is being computed it leaves them.
void release_loss_buffers();

}  // namespace lorafit
