#include "lora_delta.h"

#include <torch/csrc/autograd/custom_function.h>

#include "error.h"
#include "runtime.h"
#include "small_gemm.h"

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Inputs: y, x, then (A, B) per member slot; kMaxLoraMembers slots, empty ([0]) where unused
// (apply() records every input's device, which an undefined tensor lacks).
constexpr size_t kFirstWeight = 2;

// Forward, per member i:  down_i = x A_i^T [N, r] (fp32, saved);  y[:, cols_i] += s_i down_i B_i^T
// Backward, with g = dL/dy and g_i = g[:, cols_i]:
//   dDown_i = s_i g_i B_i [N, r];  dA_i = dDown_i^T x;  dB_i = s_i g_i^T down_i;  dx = sum_i dDown_i A_i
//   dL/dy passes through (y + delta).
struct LoraDelta : torch::autograd::Function<LoraDelta> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& x, const at::Tensor& A0, const at::Tensor& B0,
                            const at::Tensor& A1, const at::Tensor& B1, const at::Tensor& A2, const at::Tensor& B2,
                            const std::vector<double>& scalings, const std::vector<int64_t>& columns) {
    const at::Tensor* As[] = {&A0, &A1, &A2};
    const at::Tensor* Bs[] = {&B0, &B1, &B2};
    std::vector<at::Tensor> saved = {x};
    for (size_t i = 0; i < kMaxLoraMembers; ++i) {
      at::Tensor down, Bt;
      if (As[i]->numel() > 0) {
        down = rows_dot_rows(x, *As[i], 1.0);                                        // [N, r]
        Bt = Bs[i]->t().contiguous();                                                // [r, out_i], both passes read it so
        at::Tensor cols = y.narrow(1, columns[i], Bt.size(1));                        // [N, out_i], rows of y
        add_small_k(cols, down, Bt, scalings[i], /*accumulate=*/true);
      }
      saved.insert(saved.end(), {*As[i], Bt, down});
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["scalings"] = scalings;
    ctx->saved_data["columns"] = columns;
    ctx->mark_dirty({y});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const std::vector<double> scalings = ctx->saved_data["scalings"].toDoubleVector();
    const std::vector<int64_t> columns = ctx->saved_data["columns"].toIntVector();
    at::Tensor g = grad_outputs[0];
    if (g.stride(1) != 1) g = g.contiguous();
    const bool need_x = ctx->needs_input_grad(1);
    at::Tensor dx = need_x ? at::empty_like(x) : at::Tensor();
    bool dx_written = false;
    variable_list grads(kFirstWeight + 2 * kMaxLoraMembers);
    grads[0] = g;
    for (size_t i = 0; i < kMaxLoraMembers; ++i) {
      const at::Tensor &A = saved[1 + 3 * i], &Bt = saved[2 + 3 * i], &down = saved[3 + 3 * i];
      if (!down.defined()) continue;
      const at::Tensor gi = g.narrow(1, columns[i], Bt.size(1));          // [N, out_i]
      const at::Tensor d_down = rows_dot_rows(gi, Bt, scalings[i]);      // [N, r] = g_i B_i
      if (ctx->needs_input_grad(kFirstWeight + 2 * i)) grads[kFirstWeight + 2 * i] = transposed_times(d_down, x, 1.0);  // [r, in]
      if (ctx->needs_input_grad(kFirstWeight + 2 * i + 1))
        grads[kFirstWeight + 2 * i + 1] = transposed_times(down, gi, scalings[i]).t().contiguous();  // [out, r]
      if (need_x) {
        add_small_k(dx, d_down, A, 1.0, /*accumulate=*/dx_written);
        dx_written = true;
      }
    }
    if (need_x) grads[1] = dx_written ? dx : at::zeros_like(x);
    grads.push_back(at::Tensor());  // scalings
    grads.push_back(at::Tensor());  // columns
    return grads;
  }
};

}  // namespace

bool add_lora_supported(const at::Tensor& y, const at::Tensor& x, const std::vector<LoraMember>& members) {
  if (switched_off("LORAFIT_LORA_KERNELS")) return false;
  if (members.size() > kMaxLoraMembers || !small_gemm_supported(y) || x.scalar_type() != y.scalar_type() || !x.is_cpu() ||
      y.dim() != 2 || x.dim() != 2 || y.stride(1) != 1)
    return false;
  for (const LoraMember& m : members)
    if (m.A.defined() && (m.A.scalar_type() != at::kFloat || m.B.scalar_type() != at::kFloat || !m.A.is_cpu())) return false;
  return true;
}

at::Tensor add_lora(const at::Tensor& y, const at::Tensor& x, const std::vector<LoraMember>& members) {
  if (members.size() > kMaxLoraMembers) throw Error("E_INTERNAL", "add_lora: too many members");
  const at::Tensor unused = at::empty({0}, y.options().dtype(at::kFloat));
  at::Tensor slots[2 * kMaxLoraMembers];
  for (at::Tensor& t : slots) t = unused;
  std::vector<double> scalings(kMaxLoraMembers, 0.0);
  std::vector<int64_t> columns(kMaxLoraMembers, 0);
  for (size_t i = 0; i < members.size(); ++i) {
    if (!members[i].A.defined() || members[i].A.numel() == 0) continue;
    slots[2 * i] = members[i].A;
    slots[2 * i + 1] = members[i].B;
    scalings[i] = members[i].scaling;
    columns[i] = members[i].column;
  }
  const at::Tensor xd = x.stride(1) == 1 ? x : x.contiguous();
  return LoraDelta::apply(y, xd, slots[0], slots[1], slots[2], slots[3], slots[4], slots[5], scalings, columns);
}

}  // namespace lorafit
