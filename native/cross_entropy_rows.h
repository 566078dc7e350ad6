// Cross-entropy over rows of logits in one CPU kernel: the loss of each labelled position and,
// in place, its gradient with respect to the logits. Replaces, per lm_head chunk, the fp32 upcast
// copy, log_softmax, exp_, gather, scatter_add and the copy back (six passes over [C, V], two
// fp32 buffers of that size) with three passes over the logits and no buffer.
#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// z: [C, V] CPU logits, fp32 or bf16, dense rows; targets: [C] int64 in [0, V).
// Returns sum_r (logsumexp(z_r) - z_r[t_r]), computed in fp32 on z's values (transformers' loss
// upcasts bf16 logits to fp32: the same values) and summed in double. With write_grad, each row
// becomes softmax(z_r) - onehot(t_r), rounded once to z's dtype (as the fp32 gradient cast back).
double cross_entropy_rows(const at::Tensor& z, const at::Tensor& targets, bool write_grad);

// Whether cross_entropy_rows takes z (CPU, fp32/bf16, dense rows). LORAFIT_CE_KERNEL=0: never.
bool cross_entropy_rows_supported(const at::Tensor& z);

}  // namespace lorafit
