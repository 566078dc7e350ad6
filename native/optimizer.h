// Optimizers over an adapter's trainable tensors (fp32), with state that can be saved and
// restored exactly. AdamW follows torch.optim.AdamW (decoupled weight decay, bias correction);
// clipping follows torch.nn.utils.clip_grad_norm_.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace lorafit {

// Every field comes from lib/ (lib/train/options.ts holds the defaults); nothing is defaulted here.
struct OptimizerConfig {
  std::string kind;            // "adamw" | "sgd"
  double beta1 = 0, beta2 = 0, eps = 0;
  double weight_decay = 0;
  double momentum = 0;         // sgd
  // LoRA+ (PEFT's loraplus_lr_ratio): the lora_B tensors learn at lr x this; 1: plain LoRA
  double lora_b_lr_ratio = 0;
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
// with learning rate `lr`. `grad_norm` is the gradients' L2 norm, computed once by the caller
// (accumulate_gradients). Creates the state on the first call.
// lr_scale[i] multiplies lr for params[i] (LoRA+ groups); empty: 1 for all.
StepStats optimizer_step(std::vector<at::Tensor>& params, OptimizerState& state, const OptimizerConfig& config, double lr,
                         double max_grad_norm, double grad_norm, const std::vector<double>& lr_scale = {});

}  // namespace lorafit
