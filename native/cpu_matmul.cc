#include "cpu_matmul.h"

#include <ATen/record_function.h>
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>

#include "runtime.h"

namespace lorafit {

namespace {

// void at::native::mkldnn_matmul(const Tensor& mat1, const Tensor& mat2, const Tensor& result, float beta, float alpha):
// result = beta result + alpha mat1 mat2.
using MkldnnMatmul = void (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, float, float);

MkldnnMatmul find_mkldnn_matmul() {
  // libtorch_cpu is a dependency of the addon, loaded without RTLD_GLOBAL: find it by an address in it.
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&at::_ops::mm::call), &info) || !info.dli_fname) return nullptr;
  void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) return nullptr;
  void* f = dlsym(lib, "_ZN2at6native13mkldnn_matmulERKNS_6TensorES3_S3_ff");
  dlclose(lib);  // RTLD_NOLOAD took one more reference; the library stays loaded
  return reinterpret_cast<MkldnnMatmul>(f);
}

MkldnnMatmul mkldnn_matmul() {
  static const MkldnnMatmul f = find_mkldnn_matmul();
  return f;
}

// oneDNN takes a 2-D operand that is dense along either dimension (a row-major matrix or a transposed one).
bool dense_2d(const at::Tensor& t) { return t.dim() == 2 && (t.stride(1) == 1 || t.stride(0) == 1); }

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = x W^T + b with W [out, in] and b frozen; backward: dx = dy W.
struct FrozenLinear : torch::autograd::Function<FrozenLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x2, const at::Tensor& weight, const at::Tensor& bias) {
    at::Tensor y = at::empty({x2.size(0), weight.size(0)}, x2.options());  // [N, out]
    frozen_mm_out(y, x2, weight.t());
    if (bias.numel() > 0) y.add_(bias);
    ctx->save_for_backward({weight});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor weight = ctx->get_saved_variables()[0];
    at::Tensor dy = grad_outputs[0];
    if (!dense_2d(dy)) dy = dy.contiguous();
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty({dy.size(0), weight.size(1)}, dy.options());  // [N, in]
      frozen_mm_out(dx, dy, weight);
    }
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool onednn_fp32_applies(const at::Tensor& t) {
  return t.is_cpu() && t.scalar_type() == at::kFloat && mkldnn_matmul() != nullptr && !switched_off("LORAFIT_ONEDNN_FP32");
}

void frozen_mm_out(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
  if (onednn_fp32_applies(a) && b.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat && dense_2d(a) && dense_2d(b) &&
      out.dim() == 2 && out.is_contiguous() && a.size(0) > 0 && a.size(1) > 0 && b.size(1) > 0) {
    RECORD_FUNCTION("lorafit::onednn_mm", std::vector<c10::IValue>({a, b}));  // a row in step profiles, with shapes
    mkldnn_matmul()(a, b, out, /*beta=*/0.0f, /*alpha=*/1.0f);
    return;
  }
  at::mm_out(const_cast<at::Tensor&>(out), a, b);
}

at::Tensor rows_times(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor a2 = a.reshape({-1, a.size(-1)});  // [M, K]
  if (!dense_2d(a2)) a2 = a2.contiguous();
  at::Tensor out = at::empty({a2.size(0), b.size(1)}, a.options().dtype(at::promote_types(a.scalar_type(), b.scalar_type())));
  frozen_mm_out(out, a2, b);
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape.back() = b.size(1);
  return out.view(shape);
}

at::Tensor frozen_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const bool frozen = !weight.requires_grad() && !(bias.defined() && bias.requires_grad());
  if (!frozen || !onednn_fp32_applies(x) || weight.scalar_type() != at::kFloat || !dense_2d(weight)) return at::linear(x, weight, bias);
  const int64_t in = weight.size(1);
  at::Tensor x2 = x.reshape({-1, in});  // [N, in]
  if (!dense_2d(x2)) x2 = x2.contiguous();
  // apply() records each input's device: an absent bias travels as an empty tensor
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, weight.options());
  at::Tensor y = FrozenLinear::apply(x2, weight, b);  // [N, out]
  if (x.dim() == 2) return y;
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = weight.size(0);
  // As at::linear folds its input: not an autograd view, so that an in-place LoRA update of the
  // result (LoraDelta) does not turn into CopySlices and a zero-filled AsStrided gradient.
  return at::_unsafe_view(y, shape);
}

}  // namespace lorafit
