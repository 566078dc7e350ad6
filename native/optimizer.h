// Optimizers over an adapter's trainable tensors (fp32), with state that can be saved and
// restored exactly. AdamW follows torch.optim.AdamW (decoupled weight decay, bias correction);
// clipping follows torch.nn.utils.clip_grad_norm_.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace lorafit {

struct OptimizerConfig {
  std::string kind = "adamw";  // "adamw" | "sgd"
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;       // sgd
};

struct OptimizerState {
  int64_t step = 0;
  std::vector<at::Tensor> exp_avg;     // adamw: first moments; sgd: momentum buffers
  std::vector<at::Tensor> exp_avg_sq;  // adamw: second moments
};

struct StepStats {
  double grad_norm = 0;  // before clipping
  bool clipped = false;
};

// Clips the gradients of `params` to max_grad_norm (<= 0: no clipping) and applies one update
// with learning rate `lr`. Creates the state on the first call.
StepStats optimizer_step(std::vector<at::Tensor>& params, OptimizerState& state, const OptimizerConfig& config, double lr,
                         double max_grad_norm);

}  // namespace lorafit
