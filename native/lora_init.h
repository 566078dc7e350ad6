// The initial LoRA factors of one module, as PEFT's LoraLayer.update_layer makes them
// (init_lora_weights), including the inits that rewrite the base weight:
//   "kaiming"        A ~ kaiming-uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)), B = 0 (PEFT's True)
//   "gaussian"       A ~ N(0, (1/r)^2), B = 0
//   "none"           A = B = 0 (lorafit's own: a loaded adapter's placeholder)
//   "pissa"          W = U S V^T (torch.linalg.svd); A = sqrt(S_r/s) V_r^T, B = U_r sqrt(S_r/s),
//                    residual W - s B A
//   "pissa_niter_N"  the same from torch.svd_lowrank(W, r, niter=N) (randomised; draws from `gen`)
//   "olora"          W = Q R (torch.linalg.qr); A = R[:r], B = Q[:, :r], residual W - s B A
// Random draws follow PEFT's order so that a generator seeded with N gives PEFT's values under
// torch.manual_seed(N): PEFT first builds lora_A and lora_B as nn.Linear, whose default init draws
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for each, and only then applies its init.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace lorafit {

struct LoraInit {
  at::Tensor A;         // [r, in] fp32
  at::Tensor B;         // [out, r] fp32
  at::Tensor residual;  // [out, in] in the base weight's dtype: the new base weight; undefined when unchanged
};

// True for the inits that replace the base weight by a residual (pissa, pissa_niter_N, olora).
bool init_rewrites_base(const std::string& init);
// Throws Error(E_OPTION) naming `init` unless it is one of the inits above.
void check_lora_init(const std::string& init);

// `weight`: the dense base weight [out, in] (any float dtype); needed only when init_rewrites_base.
LoraInit lora_init(const std::string& init, const at::Tensor& weight, int64_t in, int64_t out, int64_t rank, double scaling,
                   at::Generator& gen);

// torch.svd_lowrank(A, q, niter) (torch/_lowrank.py, Halko et al. 2009, algorithm 4.4) with the
// random test matrix drawn from `gen`: A [m, n] ~ U [m, q] diag(S [q]) V[n, q]^T.
std::tuple<at::Tensor, at::Tensor, at::Tensor> svd_lowrank(const at::Tensor& A, int64_t q, int64_t niter, at::Generator& gen);

}  // namespace lorafit
