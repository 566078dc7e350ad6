#include "layers/attention.h"

#include <torch/version.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "layers/attention_mask.h"
#include "layers/blocked_attention.h"
#include "layers/rotary.h"
#include "layers/segment_attention.h"

namespace lorafit {

Attention::Attention(const ModelConfig& c, int64_t layer)
    : layer_(layer),
      heads_(c.num_attention_heads),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      scale_(c.attention_scale),
      softcap_(c.attn_logit_softcapping),
      sliding_(c.sliding_layers.at(layer)),
      window_(c.sliding_window) {}

namespace {
// [B, n_kv, S, D] -> [B, n_kv * n_rep, S, D], each kv head repeated n_rep times in a row (HF repeat_kv)
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const auto b = x.size(0), kv = x.size(1), s = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, kv, n_rep, s, d}).reshape({b, kv * n_rep, s, d});
}
}  // namespace

at::Tensor Attention::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                              const ForwardContext& ctx) const {
  const int64_t B = x.size(0), T = x.size(1);
  std::vector<at::Tensor> qkv_out = qkv.forward({&q_proj, &k_proj, &v_proj}, x, ctx);
  at::Tensor q = qkv_out[0].view({B, T, heads_, head_dim_}).transpose(1, 2);     // [B, H, T, D]
  at::Tensor k = qkv_out[1].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  at::Tensor v = qkv_out[2].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  if (ctx.cache) {
    KVCache& cache = *ctx.cache;
    if (cache.keys[layer_].defined()) {
      k = at::cat({cache.keys[layer_], k}, 2);
      v = at::cat({cache.values[layer_], v}, 2);
    }
    cache.keys[layer_] = k;
    cache.values[layer_] = v;
  }
  const int64_t n_rep = heads_ / kv_heads_;
  at::Tensor out;  // [B, H, T, D]
  if (ctx.segments) {
    out = attend_segments(q, k, v, *ctx.segments);  // repeats the kv heads itself, where it needs to
  } else {
    out = attend(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), bias);  // k/v: [B, H, S, D]
  }
  out = out.transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  return o_proj.forward(out, ctx);
}

at::Tensor Attention::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) const {
#if TORCH_VERSION_MAJOR >= 2
  if (softcap_ <= 0) {
    // bias undefined: plain causal attention (no padding, no cache)
    return bias.defined() ? at::scaled_dot_product_attention(q, k, v, bias, 0.0, false, scale_)
                          : at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scale_);
  }
#endif
  // Eager path (Gemma 2's soft-capping sits between the scores and the mask).
  at::Tensor scores = at::matmul(q, k.transpose(2, 3)) * scale_;  // [B, H, T, S]
  if (softcap_ > 0) scores = at::tanh(scores / softcap_) * softcap_;
  scores = scores + bias;
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs, v);
}

namespace {
// Segments this short run as plain matmuls + softmax on the CPU: libtorch's CPU flash kernel has a
// fixed cost per call that dominates at ~100 tokens, and in bf16 it is 2-3x slower than the eager
// form (measured on SmolLM2's shapes, 9 heads / 3 kv heads x 64: at 70-116 tokens fwd+bwd
// 2.5 vs 7.0 ms per layer in bf16, 3.8 vs 4.1 in fp32; even at 256, far slower at
// 1024). Longer ones go to SDPA, whose memory does not grow with len^2.
bool eager_segment(const at::Tensor& q, int64_t len) { return !q.is_cuda() && len <= 256; }

// The additive causal (and sliding-window) mask of a segment, its rows repeated for the `group`
// query heads that share a kv head: [group * len, len]. Cached per shape: every layer of a step
// asks for the same few.
const at::Tensor& grouped_causal_bias(int64_t len, int64_t group, int64_t window, at::ScalarType dtype) {
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, int>, at::Tensor> cache;
  auto key = std::make_tuple(len, group, window, static_cast<int>(dtype));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 256) cache.clear();  // lengths vary from step to step; keep this bounded
  at::Tensor bias = attention_bias({}, 1, len, 0, window, dtype, at::kCPU).view({len, len}).repeat({group, 1});
  return cache.emplace(key, std::move(bias)).first->second;
}
}  // namespace

at::Tensor Attention::attend_grouped_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) const {
  // q: [1, H, n, D]; k, v: [1, KV, n, D]. The G = H / KV query heads of a kv head share its keys
  // (HF's repeat_kv), so they are stacked along the rows: one [G n, D] x [D, n] matmul per kv
  // head, and no repeated copy of k and v.
  const int64_t n = q.size(2), group = heads_ / kv_heads_;
  at::Tensor qg = q.reshape({kv_heads_, group * n, head_dim_});                      // rows (g, t)
  const at::Tensor& bias = grouped_causal_bias(n, group, sliding_ ? window_ : 0, q.scalar_type());  // [G n, n]
  at::Tensor scores = at::baddbmm(bias, qg, k[0].transpose(1, 2), /*beta=*/1, /*alpha=*/scale_);   // [KV, G n, n]
  // As transformers' eager attention: the softmax in fp32, the probabilities back in q's dtype.
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::bmm(probs, v[0]).view({1, heads_, n, head_dim_});  // [KV, G n, D] is [H, n, D]
}

at::Tensor Attention::attend_segments(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const std::vector<int64_t>& segments) const {
  const int64_t window = sliding_ ? window_ : 0;
  const bool all_short = std::all_of(segments.begin(), segments.end(), [&](int64_t len) {
    return eager_segment(q, len) && (window == 0 || len <= window);  // no window cuts into a segment
  });
  if (softcap_ <= 0 && all_short && segment_attention_supported(q))
    return segment_attention(q, k, v, segments, scale_).transpose(1, 2);  // [1, T, H, D] -> [1, H, T, D]
  // A row with a long segment: all of its segments in blocks of GEMMs, in place of SDPA per segment.
  const bool window_cuts = window > 0 && std::any_of(segments.begin(), segments.end(), [&](int64_t len) { return len > window; });
  if (softcap_ <= 0 && !all_short && !window_cuts && blocked_attention_supported(q))
    return blocked_attention(q, k, v, segments, scale_).transpose(1, 2);  // [1, T, H, D] -> [1, H, T, D]
  // split_with_sizes, not one narrow per segment: its backward is one cat, where narrows would
  // each materialise a zero-filled gradient of the whole row.
  std::vector<at::Tensor> qs = q.split_with_sizes(segments, 2), ks = k.split_with_sizes(segments, 2),
                          vs = v.split_with_sizes(segments, 2);
  std::vector<at::Tensor> outs;
  outs.reserve(segments.size());
  const bool sdpa = TORCH_VERSION_MAJOR >= 2 && softcap_ <= 0;
  const int64_t n_rep = heads_ / kv_heads_;
  for (size_t i = 0; i < segments.size(); ++i) {
    const int64_t len = segments[i];
    if (softcap_ <= 0 && eager_segment(q, len)) {
      outs.push_back(attend_grouped_eager(qs[i], ks[i], vs[i]));  // [1, H, len, D]
      continue;
    }
    // A causal segment needs no mask tensor unless a sliding window cuts into it (or the eager path runs).
    at::Tensor bias;
    if (!sdpa || (window > 0 && len > window)) bias = attention_bias({}, 1, len, 0, window, q.scalar_type(), q.device());
    outs.push_back(attend(qs[i], repeat_kv(ks[i], n_rep), repeat_kv(vs[i], n_rep), bias));  // [1, H, len, D]
  }
  return outs.size() == 1 ? outs[0] : at::cat(outs, 2);
}

}  // namespace lorafit
