#include "loss.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <mutex>

#include "cpu_matmul.h"
#include "cross_entropy_rows.h"
#include "error.h"

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Enough tokens per chunk to keep matmuls efficient, few enough that a chunk's fp32 logits
// stay around 256 MB for a 152k vocabulary.
int64_t chunk_tokens(int64_t vocab) { return std::max<int64_t>(64, (int64_t{64} << 20) / std::max<int64_t>(vocab, 1)); }

// LinearCrossEntropy's chunk buffers, kept from one call to the next on the CPU: every
// micro-batch of every step asks for them again, and fresh ones were page-faulted in and zeroed
// by the kernel each time (~40k faults, 157 MB, a 320-token SmolLM2 step; 670 MB at a 152k
// vocabulary). One set for the process, flat and grown as needed; a caller that finds it in use
// (a concurrent evaluation) allocates its own. release_loss_buffers() frees it.
struct ChunkBuffers {
  at::Tensor logits, upcast, log_probs;  // flat: [capacity] model dtype, fp32, fp32
};
std::mutex g_buffers_mu;
ChunkBuffers& g_buffers = *new ChunkBuffers;  // never destroyed: no tensor freed during static destruction at exit

// A [rows, vocab] view of `slot`, which is (re)allocated when it is too small or of another kind.
at::Tensor chunk_view(at::Tensor& slot, int64_t rows, int64_t vocab, const at::TensorOptions& options) {
  const int64_t n = rows * vocab;
  if (!slot.defined() || slot.numel() < n || slot.scalar_type() != options.dtype().toScalarType() || slot.device() != options.device())
    slot = at::empty({n}, options);
  return slot.narrow(0, 0, n).view({rows, vocab});
}

struct LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
  // h: [N, H] (model dtype), weight: [V, H], targets: [N] int64 -> sum of CE (fp32 scalar)
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& weight, const at::Tensor& targets,
                            double softcap, bool need_grad_h, bool need_grad_w) {
    const int64_t n = h.size(0), vocab = weight.size(0);
    const int64_t step = chunk_tokens(vocab);
    const int64_t rows = std::max<int64_t>(1, std::min(step, n));
    at::Tensor total = at::zeros({}, h.options().dtype(at::kFloat));
    at::Tensor grad_h = need_grad_h ? at::empty_like(h) : at::Tensor();
    at::Tensor grad_w = need_grad_w ? at::zeros(weight.sizes(), weight.options().dtype(at::kFloat)) : at::Tensor();
    // Chunk buffers reused by every chunk: glibc maps each tensor over 32 MiB fresh and unmaps it
    // on free, so per-chunk temporaries were page-faulted in again for every chunk (and, kept
    // between calls, for every micro-batch: g_buffers).
    std::unique_lock<std::mutex> shared(g_buffers_mu, std::defer_lock);
    if (h.is_cpu()) shared.try_lock();
    ChunkBuffers own;
    ChunkBuffers& bufs = shared.owns_lock() ? g_buffers : own;
    at::Tensor z_buf = chunk_view(bufs.logits, rows, vocab, h.options());          // [C, V] model dtype
    // The loss and dz of a chunk in one CPU kernel (cross_entropy_rows.h) where it applies; else
    // ATen's passes below, over two fp32 buffers of the chunk's size.
    const bool fused = softcap <= 0 && cross_entropy_rows_supported(z_buf);
    const bool upcast = !fused && h.scalar_type() != at::kFloat;  // fp32 models need no upcast copy
    at::Tensor zf_buf = upcast ? chunk_view(bufs.upcast, rows, vocab, h.options().dtype(at::kFloat)) : at::Tensor();  // [C, V] upcast logits
    at::Tensor lp_buf = fused ? at::Tensor() : chunk_view(bufs.log_probs, rows, vocab, h.options().dtype(at::kFloat));  // [C, V] log-probs, then dz
    at::Tensor minus_one = fused ? at::Tensor() : at::full({rows, 1}, -1.0f, lp_buf.options());
    double fused_total = 0;
    for (int64_t start = 0; start < n; start += step) {
      const int64_t len = std::min(step, n - start);
      at::Tensor hc = h.narrow(0, start, len);                    // [C, H]
      at::Tensor z = z_buf.narrow(0, 0, len);
      frozen_mm_out(z, hc, weight.t());                           // [C, V] model dtype, as HF's lm_head
      at::Tensor dzc;                                             // d(sum CE)/dz in the model dtype, in z's buffer
      if (fused) {
        fused_total += cross_entropy_rows(z, targets.narrow(0, start, len), need_grad_h || need_grad_w);
        if (!need_grad_h && !need_grad_w) continue;
        dzc = z;
      } else {
        at::Tensor tc = targets.narrow(0, start, len).unsqueeze(1); // [C, 1]
        at::Tensor capped;
        if (softcap > 0) {
          capped = at::tanh(z / softcap);                           // HF caps in the model dtype
          z.copy_(capped * softcap);
        }
        at::Tensor zf = upcast ? zf_buf.narrow(0, 0, len).copy_(z) : z;  // the loss upcasts, as HF's loss does
        at::Tensor lp = lp_buf.narrow(0, 0, len);
        at::_log_softmax_out(lp, zf, 1, false);                     // [C, V] one fused row-wise kernel
        total -= lp.gather(1, tc).sum();
        if (!need_grad_h && !need_grad_w) continue;
        // d(sum CE)/dz = softmax(z) - onehot(target), in place over the log-probs
        at::Tensor dz = lp.exp_();
        dz.scatter_add_(1, tc, minus_one.narrow(0, 0, len));
        if (softcap > 0) dz.mul_(1 - capped.to(at::kFloat).pow(2));
        dzc = z.copy_(dz);
      }
      if (need_grad_h) {
        at::Tensor gh = grad_h.narrow(0, start, len);
        frozen_mm_out(gh, dzc, weight);                           // [C, H]
      }
      if (need_grad_w) grad_w.add_(at::matmul(dzc.t(), hc).to(at::kFloat));  // [V, H]
    }
    if (fused) total.fill_(fused_total);
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = grad_w;
    ctx->saved_data["w_dtype"] = weight.scalar_type();
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    at::Tensor g = grad_outputs[0];  // scalar: d(loss)/d(sum), e.g. 1 / tokens of the step
    at::Tensor grad_h = ctx->saved_data["grad_h"].toTensor();
    at::Tensor grad_w = ctx->saved_data["grad_w"].toTensor();
    at::Tensor out_h = grad_h.defined() ? grad_h * g.to(grad_h.scalar_type()) : at::Tensor();
    at::Tensor out_w;
    if (grad_w.defined()) out_w = (grad_w * g).to(ctx->saved_data["w_dtype"].toScalarType());
    return {out_h, out_w, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void release_loss_buffers() {
  // Called on the JS thread: never waits for a loss in flight (that one's buffers stay, until the next call).
  std::unique_lock<std::mutex> lock(g_buffers_mu, std::try_to_lock);
  if (lock.owns_lock()) g_buffers = ChunkBuffers{};
}

int64_t count_loss_tokens(const at::Tensor& labels) {
  if (labels.size(1) < 2) return 0;
  return labels.narrow(1, 1, labels.size(1) - 1).ne(kIgnoreIndex).sum().item<int64_t>();
}

std::pair<at::Tensor, int64_t> masked_lm_loss_sum(const at::Tensor& hidden, const at::Tensor& labels, const at::Tensor& weight,
                                                  double softcap) {
  const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2), V = weight.size(0);
  if (labels.dim() != 2 || labels.size(0) != B || labels.size(1) != T)
    throw Error("E_SHAPE", "labels must have the shape of input_ids [" + std::to_string(B) + ", " + std::to_string(T) + "]");
  at::Tensor y = labels.to(hidden.device(), at::kLong);
  if (T < 2) return {at::zeros({}, hidden.options().dtype(at::kFloat)), 0};
  at::Tensor ys = y.narrow(1, 1, T - 1).reshape({-1});               // [B*(T-1)] targets
  at::Tensor hs = hidden.narrow(1, 0, T - 1).reshape({-1, H});       // [B*(T-1), H]
  at::Tensor keep = ys.ne(kIgnoreIndex).nonzero().squeeze(1);        // [N]
  at::Tensor targets = ys.index_select(0, keep);
  if (targets.numel() > 0 && (targets.min().item<int64_t>() < 0 || targets.max().item<int64_t>() >= V))
    throw Error("E_INPUT", "labels hold a token id outside [0, " + std::to_string(V) + ") that is not -100");
  at::Tensor h = hs.index_select(0, keep);                            // [N, H]
  const bool grad_h = h.requires_grad();
  const bool grad_w = weight.requires_grad();
  at::Tensor sum = LinearCrossEntropy::apply(h, weight, targets, softcap, grad_h, grad_w);
  return {sum, targets.numel()};
}

}  // namespace lorafit
