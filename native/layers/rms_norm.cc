#include "layers/rms_norm.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The ATen composition: transformers' arithmetic op for op. Used where the fused kernel is not
// (CUDA, a trainable weight under full-parameter training).
at::Tensor rms_norm_ops(const at::Tensor& x, const at::Tensor& weight, double eps, bool gemma_style) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (gemma_style) return (h * (weight.to(at::kFloat) + 1.0)).to(x.scalar_type());
  return weight * h.to(x.scalar_type());
}

constexpr int64_t kRowsPerTask = 16;

// One pass per row on the CPU, in place of ~8 kernels forward and ~15 backward on [tokens, hidden]
// tensors, each of which costs more in launch and memory traffic than in arithmetic here.
// Forward, per row (fp32 inside, as transformers):
//   rstd = 1 / sqrt(mean(x^2) + eps); n = x rstd
//   llama: y = w * n.to(dtype)   (both roundings kept, so bf16 outputs equal transformers')
//   gemma: y = (n * (1 + w)).to(dtype)
// Backward (w frozen): with g = dy * w (llama) or dy * (1 + w) (gemma), in fp32,
//   dx = rstd * (g - n * mean(g * n))
struct FusedRmsNorm : torch::autograd::Function<FusedRmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& weight, double eps, bool gemma) {
    at::Tensor x = x_in.contiguous();
    const int64_t hidden = x.size(-1), rows = x.numel() / hidden;
    at::Tensor y = at::empty_like(x);
    at::Tensor rstd = at::empty({rows}, x.options().dtype(at::kFloat));
    at::Tensor w = weight.to(at::kFloat).contiguous();  // exact for a bf16/fp16 weight
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "lorafit_rms_norm", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const float* wp = w.data_ptr<float>();
      scalar_t* yp = y.data_ptr<scalar_t>();
      float* rp = rstd.data_ptr<float>();
      at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const scalar_t* xr = xp + r * hidden;
          scalar_t* yr = yp + r * hidden;
          // The mean of squares in double: torch's vectorised fp32 reduction is close to exact,
          // and a plain fp32 running sum over 576+ terms is not (SmolLM2's logits moved 1.8e-4).
          double ss = 0;
          for (int64_t i = 0; i < hidden; ++i) {
            const float sq = static_cast<float>(xr[i]) * static_cast<float>(xr[i]);  // x.pow(2) in fp32
            ss += sq;
          }
          const float mean = static_cast<float>(ss / static_cast<double>(hidden));
          const float inv = 1.0f / std::sqrt(mean + static_cast<float>(eps));
          rp[r] = inv;
          if (gemma) {
            for (int64_t i = 0; i < hidden; ++i)
              yr[i] = static_cast<scalar_t>(static_cast<float>(xr[i]) * inv * (1.0f + static_cast<float>(wp[i])));
          } else {
            for (int64_t i = 0; i < hidden; ++i)
              yr[i] = static_cast<scalar_t>(static_cast<float>(wp[i]) * static_cast<float>(static_cast<scalar_t>(static_cast<float>(xr[i]) * inv)));
          }
        }
      });
    });
    ctx->save_for_backward({x, w, rstd});
    ctx->saved_data["gemma"] = gemma;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &rstd = saved[2];
    const bool gemma = ctx->saved_data["gemma"].toBool();
    at::Tensor dy = grad_outputs[0].to(x.scalar_type()).contiguous();
    const int64_t hidden = x.size(-1), rows = x.numel() / hidden;
    at::Tensor dx = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "lorafit_rms_norm_backward", [&] {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const float* wp = w.data_ptr<float>();
      const scalar_t* gp = dy.data_ptr<scalar_t>();
      scalar_t* dp = dx.data_ptr<scalar_t>();
      const float* rp = rstd.data_ptr<float>();
      at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const scalar_t* xr = xp + r * hidden;
          const scalar_t* gr = gp + r * hidden;
          const float inv = rp[r];
          double dot = 0;  // sum(g * n)
          for (int64_t i = 0; i < hidden; ++i) {
            const float wi = gemma ? 1.0f + static_cast<float>(wp[i]) : static_cast<float>(wp[i]);
            dot += static_cast<float>(gr[i]) * wi * static_cast<float>(xr[i]) * inv;
          }
          const float mean = static_cast<float>(dot / static_cast<double>(hidden));
          scalar_t* dr = dp + r * hidden;
          for (int64_t i = 0; i < hidden; ++i) {
            const float wi = gemma ? 1.0f + static_cast<float>(wp[i]) : static_cast<float>(wp[i]);
            const float n = static_cast<float>(xr[i]) * inv;
            dr[i] = static_cast<scalar_t>(inv * (static_cast<float>(gr[i]) * wi - n * mean));
          }
        }
      });
    });
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, bool gemma_style) {
  if (x.is_cpu() && !weight.requires_grad() && x.numel() > 0) return FusedRmsNorm::apply(x, weight, eps, gemma_style);
  return rms_norm_ops(x, weight, eps, gemma_style);
}

}  // namespace lorafit
