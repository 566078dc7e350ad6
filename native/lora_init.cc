#include "lora_init.h"

#include <cmath>

#include "error.h"

namespace lorafit {

namespace {
// "pissa_niter_N" -> N; -1 when `init` is not of that form (PEFT: init.split("_niter_") has 2 parts, int(N))
int64_t pissa_niter(const std::string& init) {
  const std::string prefix = "pissa_niter_";
  if (init.rfind(prefix, 0) != 0 || init.size() == prefix.size()) return -1;
  const std::string n = init.substr(prefix.size());
  if (n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(n);
}

// A [r, in], B [out, r] from W [out, in] ~ U diag(S) Vh, PiSSA's split of the top-r part:
// each factor carries sqrt(S_r / scaling), so scaling * B A = U_r S_r Vh_r.
void pissa_factors(const at::Tensor& U, at::Tensor S, const at::Tensor& Vh, int64_t r, double scaling, LoraInit& out) {
  at::Tensor Sr = S.slice(0, 0, r) / scaling;          // [r]
  at::Tensor root = at::diag(at::sqrt(Sr));            // [r, r]
  out.A = at::matmul(root, Vh.slice(0, 0, r));         // [r, in]
  out.B = at::matmul(U.slice(1, 0, r), root);          // [out, r]
}
}  // namespace

bool init_rewrites_base(const std::string& init) { return init == "pissa" || init == "olora" || pissa_niter(init) >= 0; }

void check_lora_init(const std::string& init) {
  if (init == "kaiming" || init == "gaussian" || init == "none" || init_rewrites_base(init)) return;
  throw Error("E_OPTION", "option 'init' must be 'kaiming', 'gaussian', 'pissa', 'pissa_niter_<N>', 'olora' or 'none', got '" + init + "'");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> svd_lowrank(const at::Tensor& A_in, int64_t q, int64_t niter, at::Generator& gen) {
  const bool wide = A_in.size(0) < A_in.size(1);
  at::Tensor A = wide ? A_in.mH() : A_in;  // [m, n], m >= n
  // get_approximate_basis: Q [m, q] with orthonormal columns, Q Q^H A ~ A
  at::Tensor R = at::randn({A.size(1), q}, gen, A.options());
  at::Tensor Q = std::get<0>(at::linalg_qr(at::matmul(A, R)));
  for (int64_t i = 0; i < niter; ++i) {
    Q = std::get<0>(at::linalg_qr(at::matmul(A.mH(), Q)));
    Q = std::get<0>(at::linalg_qr(at::matmul(A, Q)));
  }
  at::Tensor B = at::matmul(Q.mH(), A);  // [q, n]
  auto [U, S, Vh] = at::linalg_svd(B, false);
  at::Tensor V = Vh.mH();
  U = Q.matmul(U);
  if (wide) std::swap(U, V);
  return {U, S, V};
}

LoraInit lora_init(const std::string& init, const at::Tensor& weight, int64_t in, int64_t out, int64_t r, double scaling, at::Generator& gen) {
  check_lora_init(init);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  LoraInit o;
  o.A = at::zeros({r, in}, f32);
  o.B = at::zeros({out, r}, f32);
  if (init == "none") return o;
  // PEFT's nn.Linear(in, r) and nn.Linear(r, out) draw their default init before PEFT's own one
  o.A.uniform_(-1.0 / std::sqrt(static_cast<double>(in)), 1.0 / std::sqrt(static_cast<double>(in)), gen);
  o.B.uniform_(-1.0 / std::sqrt(static_cast<double>(r)), 1.0 / std::sqrt(static_cast<double>(r)), gen);
  if (init == "kaiming" || init == "gaussian") {
    if (init == "kaiming") o.A.uniform_(-1.0 / std::sqrt(static_cast<double>(in)), 1.0 / std::sqrt(static_cast<double>(in)), gen);
    else o.A.normal_(0.0, 1.0 / static_cast<double>(r), gen);
    o.B.zero_();
    return o;
  }
  // The inits that split the base weight, in fp32 as PEFT computes them
  at::Tensor W = weight.to(at::kFloat);  // [out, in]
  if (init == "olora") {
    auto [Q, R] = at::linalg_qr(W);      // Q [out, k], R [k, in], k = min(out, in)
    o.A = R.slice(0, 0, r).contiguous();
    o.B = Q.slice(1, 0, r).contiguous();
  } else if (init == "pissa") {
    auto [U, S, Vh] = at::linalg_svd(W, false);
    pissa_factors(U, S, Vh, r, scaling, o);
  } else {
    auto [U, S, V] = svd_lowrank(W, r, pissa_niter(init), gen);
    pissa_factors(U, S, V.t(), r, scaling, o);
  }
  if (o.A.size(0) != r || o.B.size(1) != r)
    throw Error("E_OPTION", "init '" + init + "' needs rank <= min(in, out) = " + std::to_string(std::min(in, out)) + ", got rank " + std::to_string(r));
  o.residual = (W - scaling * at::matmul(o.B, o.A)).to(weight.scalar_type());
  return o;
}

}  // namespace lorafit
