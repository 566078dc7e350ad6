#include "layers/swiglu.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "runtime.h"
#include "vec16.h"

namespace lorafit {

namespace {

using namespace vec16;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kRowsPerTask = 4;

inline float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

// Forward, one row: h = round(round(silu(g)) u), silu(g) = g sigmoid(g), all in fp32.
template <typename T>
LORAFIT_INLINE void forward_row(const T* g, const T* u, T* h, int64_t I) {
  int64_t i = 0;
  for (; i + kLanes <= I; i += kLanes) {
    const v16 gv = load16(g + i);
    const v16 silu = round_to<T>(gv / (1.0f + exp16(-gv)));
    store16(h + i, silu * load16(u + i));
  }
  for (; i < I; ++i) {
    const float gi = static_cast<float>(g[i]);
    const float silu = static_cast<float>(static_cast<T>(gi * sigmoid(gi)));
    h[i] = static_cast<T>(silu * static_cast<float>(u[i]));
  }
}

// Backward, one row, as autograd's mul and silu_backward would:
//   du = round(dh round(silu(g)));  ds = round(dh u);  dg = round(ds sigmoid(g) (1 + g (1 - sigmoid(g))))
template <typename T>
LORAFIT_INLINE void backward_row(const T* g, const T* u, const T* dh, T* dg, T* du, int64_t I) {
  int64_t i = 0;
  for (; i + kLanes <= I; i += kLanes) {
    const v16 gv = load16(g + i), dv = load16(dh + i);
    const v16 sig = 1.0f / (1.0f + exp16(-gv));
    store16(du + i, dv * round_to<T>(gv * sig));
    const v16 ds = round_to<T>(dv * load16(u + i));
    store16(dg + i, ds * sig * (1.0f + gv * (1.0f - sig)));
  }
  for (; i < I; ++i) {
    const float gi = static_cast<float>(g[i]), d = static_cast<float>(dh[i]), sig = sigmoid(gi);
    du[i] = static_cast<T>(d * static_cast<float>(static_cast<T>(gi * sig)));
    const float ds = static_cast<float>(static_cast<T>(d * static_cast<float>(u[i])));
    dg[i] = static_cast<T>(ds * sig * (1.0f + gi * (1.0f - sig)));
  }
}

// Rows [r0, r1) of [rows, 2 I] inputs; non-template entry points for the vector clones.
#define LORAFIT_SWIGLU_ROWS(T, SUFFIX)                                                                                       \
  LORAFIT_VECTOR_CLONES void forward_rows_##SUFFIX(const T* gu, T* h, int64_t I, int64_t r0, int64_t r1) {                \
    for (int64_t r = r0; r < r1; ++r) forward_row(gu + r * 2 * I, gu + r * 2 * I + I, h + r * I, I);                      \
  }                                                                                                                        \
  LORAFIT_VECTOR_CLONES void backward_rows_##SUFFIX(const T* gu, const T* dh, T* dgu, int64_t I, int64_t r0, int64_t r1) { \
    for (int64_t r = r0; r < r1; ++r)                                                                                      \
      backward_row(gu + r * 2 * I, gu + r * 2 * I + I, dh + r * I, dgu + r * 2 * I, dgu + r * 2 * I + I, I);              \
  }
LORAFIT_SWIGLU_ROWS(float, f32)
LORAFIT_SWIGLU_ROWS(bf16, bf16)
#undef LORAFIT_SWIGLU_ROWS

struct SwiGlu : torch::autograd::Function<SwiGlu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate_up_in) {
    const at::Tensor gate_up = gate_up_in.contiguous();
    const int64_t I = gate_up.size(-1) / 2, rows = gate_up.numel() / gate_up.size(-1);
    std::vector<int64_t> shape(gate_up.sizes().begin(), gate_up.sizes().end());
    shape.back() = I;
    at::Tensor h = at::empty(shape, gate_up.options());
    const bool b16 = gate_up.scalar_type() == at::kBFloat16;
    at::parallel_for(0, rows, kRowsPerTask, [&](int64_t r0, int64_t r1) {
      if (b16) forward_rows_bf16(gate_up.data_ptr<bf16>(), h.data_ptr<bf16>(), I, r0, r1);
      else forward_rows_f32(gate_up.data_ptr<float>(), h.data_ptr<float>(), I, r0, r1);
    });
    ctx->save_for_backward({gate_up});
    return h;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor gate_up = ctx->get_saved_variables()[0];
    const at::Tensor dh = grad_outputs[0].to(gate_up.scalar_type()).contiguous();
    const int64_t I = gate_up.size(-1) / 2, rows = gate_up.numel() / gate_up.size(-1);
    at::Tensor d_gate_up = at::empty_like(gate_up);
    const bool b16 = gate_up.scalar_type() == at::kBFloat16;
    at::parallel_for(0, rows, kRowsPerTask, [&](int64_t r0, int64_t r1) {
      if (b16) backward_rows_bf16(gate_up.data_ptr<bf16>(), dh.data_ptr<bf16>(), d_gate_up.data_ptr<bf16>(), I, r0, r1);
      else backward_rows_f32(gate_up.data_ptr<float>(), dh.data_ptr<float>(), d_gate_up.data_ptr<float>(), I, r0, r1);
    });
    return {d_gate_up};
  }
};

}  // namespace

bool swiglu_supported(const at::Tensor& gate_up) {
  if (switched_off("LORAFIT_SWIGLU_KERNEL")) return false;
  const auto t = gate_up.scalar_type();
  return gate_up.is_cpu() && (t == at::kFloat || t == at::kBFloat16) && gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0;
}

at::Tensor swiglu(const at::Tensor& gate_up) { return SwiGlu::apply(gate_up); }

}  // namespace lorafit
