#include "layers/rotary.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace lorafit {

Rotary::Rotary(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  // Same float32 arithmetic as transformers: base ** (arange(0, dim, 2).float() / dim)
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv = 1.0 / at::pow(c.rope_theta, exponents);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") {
    inv = inv / s.factor;
  } else if (s.type == "llama3") {
    const double old_len = static_cast<double>(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / s.factor, inv);
    at::Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    at::Tensor medium = at::logical_and(at::logical_not(wavelen < high_wavelen), at::logical_not(wavelen > low_wavelen));
    inv = at::where(medium, smoothed, scaled);
  }
  inv_freq_ = inv;
}

std::pair<at::Tensor, at::Tensor> Rotary::cos_sin(const at::Tensor& position_ids, at::ScalarType dtype) const {
  at::Tensor inv = inv_freq_.to(position_ids.device());
  at::Tensor freqs = position_ids.to(at::kFloat).unsqueeze(-1) * inv;  // [B, T, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);                          // [B, T, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// transformers' apply_rotary_pos_emb, op for op (CUDA and anything the fused kernel does not take).
at::Tensor apply_rotary_ops(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

// out = x cos + rotate_half(x) sin in one pass over any strided x (q and k are column slices of
// the fused q/k/v output), in place of 6 kernels forward and as many backward. Each product and
// the sum are rounded to x's dtype as transformers' three ops round them. With rotate_half(x) =
// [-x2, x1], the backward is dx = dy cos + [ (dy sin)2, -(dy sin)1 ].
struct FusedRotary : torch::autograd::Function<FusedRotary> {
  // x: [B, H, T, D] (any strides), cos/sin: [B, T, D] -> [B, H, T, D] (a view of [B, T, H, D] memory)
  template <bool kBackward>
  static at::Tensor run(const at::Tensor& x, const at::Tensor& cos_in, const at::Tensor& sin_in) {
    const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = D / 2;
    at::Tensor cos = cos_in.to(x.scalar_type()).contiguous(), sin = sin_in.to(x.scalar_type()).contiguous();
    at::Tensor out = at::empty({B, T, H, D}, x.options());
    const int64_t sb = x.stride(0), sh = x.stride(1), st = x.stride(2), sd = x.stride(3);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "lorafit_rotary", [&] {
      using acc = float;
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const scalar_t* cp = cos.data_ptr<scalar_t>();
      const scalar_t* sp = sin.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      auto rnd = [](acc v) { return static_cast<acc>(static_cast<scalar_t>(v)); };
      at::parallel_for(0, B * T, 8, [&](int64_t begin, int64_t end) {
        for (int64_t bt = begin; bt < end; ++bt) {
          const int64_t b = bt / T, t = bt % T;
          const scalar_t* c = cp + bt * D;
          const scalar_t* s = sp + bt * D;
          for (int64_t h = 0; h < H; ++h) {
            const scalar_t* xr = xp + b * sb + h * sh + t * st;
            scalar_t* o = op + (bt * H + h) * D;
            if (sd == 1) {  // the usual layout: two branch-free loops the compiler vectorises
              for (int64_t i = 0; i < half; ++i) {
                const acc other = kBackward ? rnd(static_cast<acc>(xr[i + half]) * static_cast<acc>(s[i + half]))
                                            : rnd(-static_cast<acc>(xr[i + half]) * static_cast<acc>(s[i]));
                o[i] = static_cast<scalar_t>(rnd(static_cast<acc>(xr[i]) * static_cast<acc>(c[i])) + other);
              }
              for (int64_t i = half; i < D; ++i) {
                const acc other = kBackward ? -rnd(static_cast<acc>(xr[i - half]) * static_cast<acc>(s[i - half]))
                                            : rnd(static_cast<acc>(xr[i - half]) * static_cast<acc>(s[i]));
                o[i] = static_cast<scalar_t>(rnd(static_cast<acc>(xr[i]) * static_cast<acc>(c[i])) + other);
              }
              continue;
            }
            for (int64_t i = 0; i < D; ++i) {
              const acc xi = static_cast<acc>(xr[i * sd]);
              acc other;  // forward: rotate_half(x)_i sin_i; backward: the transposed rotation of dy sin
              if (!kBackward) {
                const acc partner = static_cast<acc>(xr[(i < half ? i + half : i - half) * sd]);
                other = rnd((i < half ? -partner : partner) * static_cast<acc>(s[i]));
              } else {
                const int64_t j = i < half ? i + half : i - half;
                const acc ds = rnd(static_cast<acc>(xr[j * sd]) * static_cast<acc>(s[j]));
                other = i < half ? ds : -ds;
              }
              o[i] = static_cast<scalar_t>(rnd(xi * static_cast<acc>(c[i])) + other);
            }
          }
        }
      });
    });
    return out.transpose(1, 2);
  }

  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return run<false>(x, cos, sin);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    return {run<true>(grad_outputs[0], saved[0], saved[1]), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  auto per_position = [&](const at::Tensor& t) {  // [B, T, D], not broadcast
    return t.dim() == 3 && t.size(0) == x.size(0) && t.size(1) == x.size(2) && t.size(2) == x.size(3) && !t.requires_grad();
  };
  if (x.is_cpu() && x.dim() == 4 && x.size(-1) % 2 == 0 && x.numel() > 0 && per_position(cos) && per_position(sin))
    return FusedRotary::apply(x, cos, sin);
  return apply_rotary_ops(x, cos, sin);
}

}  // namespace lorafit
