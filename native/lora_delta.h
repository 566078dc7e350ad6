#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace lorafit {

// One member of a LoRA update: columns [column, column + B.size(0)) of the output get
// scaling * (x A^T) B^T. A: [r, in], B: [out, r], fp32; undefined A: the member lacks the adapter.
struct LoraMember {
  at::Tensor A, B;
  double scaling = 1.0;
  int64_t column = 0;
};

// y += the LoRA updates of up to kMaxLoraMembers members (one projection, or a fused group whose
// output holds its members' columns side by side), in place, with autograd, on the CPU kernels of
// small_gemm.h (fp32 accumulation; the products x A^T stay fp32, where at::mm in bf16 rounds
// them). y: [N, sum out], the frozen GEMM's own output (mm saves its inputs, not its output, so
// writing into it is safe); x: [N, in], y's dtype. Returns y.
constexpr size_t kMaxLoraMembers = 3;
at::Tensor add_lora(const at::Tensor& y, const at::Tensor& x, const std::vector<LoraMember>& members);

// Whether add_lora takes these: CPU, fp32 or bf16 x and y of one dtype, fp32 LoRA weights, at
// most kMaxLoraMembers members. Debugging aid: LORAFIT_LORA_KERNELS=0 turns it off (at::mm runs).
bool add_lora_supported(const at::Tensor& y, const at::Tensor& x, const std::vector<LoraMember>& members);

}  // namespace lorafit
