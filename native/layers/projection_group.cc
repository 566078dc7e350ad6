#include "layers/projection_group.h"

#include <optional>

#include "cpu_matmul.h"
#include "lora_delta.h"

namespace lorafit {

ProjectionGroup ProjectionGroup::fuse(const std::vector<LoraLinear*>& members) {
  ProjectionGroup g;
  if (members.size() < 2) return g;
  const LoraLinear& first = *members.front();
  const bool has_bias = first.bias().defined();
  std::vector<at::Tensor> weights, biases;
  for (const LoraLinear* m : members) {
    if (m->is_quantized() || !m->weight().defined() || m->weight().requires_grad() || m->weight().scalar_type() != first.weight().scalar_type() ||
        m->weight().device() != first.weight().device() || m->in_features() != first.in_features() || m->bias().defined() != has_bias)
      return g;
    weights.push_back(m->weight());
    if (has_bias) biases.push_back(m->bias());
  }
  g.weight_ = at::cat(weights, 0);  // [sum out, in]
  if (has_bias) g.bias_ = at::cat(biases, 0);
  int64_t row = 0;
  for (LoraLinear* m : members) {
    const int64_t out = m->out_features();
    m->mutable_weight() = g.weight_.narrow(0, row, out);  // the separate copy is freed here
    if (has_bias) m->mutable_bias() = g.bias_.narrow(0, row, out);
    row += out;
  }
  return g;
}

bool ProjectionGroup::intact(const std::vector<const LoraLinear*>& members) const {
  if (!weight_.defined()) return false;
  const auto* base = static_cast<const char*>(weight_.data_ptr());
  const int64_t row_bytes = weight_.size(1) * static_cast<int64_t>(weight_.element_size());
  int64_t row = 0;
  for (const LoraLinear* m : members) {
    const at::Tensor& w = m->weight();
    // Merging or loading replaces a member's weight by a new tensor; full-parameter training
    // needs the gradient of each member's own weight.
    if (!w.defined() || w.requires_grad() || w.scalar_type() != weight_.scalar_type() ||
        static_cast<const char*>(w.data_ptr()) != base + row * row_bytes)
      return false;
    if (bias_.defined() && (!m->bias().defined() || m->bias().requires_grad() ||
                            static_cast<const char*>(m->bias().data_ptr()) !=
                                static_cast<const char*>(bias_.data_ptr()) + row * static_cast<int64_t>(bias_.element_size())))
      return false;
    row += w.size(0);
  }
  return row == weight_.size(0);
}

bool ProjectionGroup::grouped(const std::vector<const LoraLinear*>& members, const ForwardContext& ctx) const {
  if (!intact(members)) return false;
  if (!ctx.active_adapters) return true;
  for (const auto& name : *ctx.active_adapters) {
    std::optional<at::ScalarType> lora_dtype;  // the stacked A's need one dtype
    for (const LoraLinear* m : members) {
      auto it = m->adapters().find(name);
      if (it == m->adapters().end()) continue;
      const LoraWeights& a = it->second;
      // DoRA needs each member's own weight norm; dropout draws one mask per member, as PEFT does.
      if (a.merged) continue;  // in the (regrouped) base weight already
      if (a.magnitude.defined() || (ctx.training && a.dropout > 0)) return false;
      if (lora_dtype && *lora_dtype != a.A.scalar_type()) return false;
      lora_dtype = a.A.scalar_type();
    }
  }
  return true;
}

std::vector<at::Tensor> ProjectionGroup::forward(const std::vector<const LoraLinear*>& members, const at::Tensor& x,
                                                 const ForwardContext& ctx) const {
  std::vector<at::Tensor> outs;
  if (!grouped(members, ctx)) {
    for (const LoraLinear* m : members) outs.push_back(m->forward(x, ctx));
    return outs;
  }
  at::Tensor y = joined_forward(members, x, ctx);  // [..., sum out]
  std::vector<int64_t> sizes;
  for (const LoraLinear* m : members) sizes.push_back(m->out_features());
  for (at::Tensor& part : y.split_with_sizes(sizes, -1)) outs.push_back(part);  // [..., out_i] each
  return outs;
}

at::Tensor ProjectionGroup::joined_forward(const std::vector<const LoraLinear*>& members, const at::Tensor& x,
                                           const ForwardContext& ctx) const {
  const int64_t in = weight_.size(1);
  at::Tensor x2 = x.reshape({-1, in});                                                   // [N, in]
  at::Tensor y = frozen_linear(x2, weight_, bias_);  // [N, sum out]
  const auto out_dtype = y.scalar_type();
  if (ctx.active_adapters) {
    for (const auto& name : *ctx.active_adapters) {
      // Stack the A's of the members that have this adapter; B becomes block-diagonal, with an
      // empty block (no columns) for a member without it: y += (x A_stack^T) B_bd^T.
      std::vector<const LoraWeights*> present;
      for (const LoraLinear* m : members) {
        auto it = m->adapters().find(name);
        present.push_back(it == m->adapters().end() || it->second.merged ? nullptr : &it->second);
      }
      const LoraWeights* first = nullptr;
      bool one_scaling = true;  // the usual case: one alpha / r for the whole adapter
      for (const LoraWeights* a : present)
        if (a) {
          if (first && a->scaling != first->scaling) one_scaling = false;
          if (!first) first = a;
        }
      if (!first) continue;
      // The CPU kernels: each member's update into its own columns of y, no stacking needed.
      std::vector<LoraMember> lora;
      int64_t column = 0;
      for (size_t i = 0; i < members.size(); ++i) {
        if (present[i]) lora.push_back({present[i]->A, present[i]->B, present[i]->scaling, column});
        column += members[i]->out_features();
      }
      if (y.scalar_type() == x2.scalar_type() && add_lora_supported(y, x2, lora)) {
        y = add_lora(y, x2, lora);
        continue;
      }
      std::vector<at::Tensor> As, Bs;
      for (size_t i = 0; i < members.size(); ++i) {
        const LoraWeights* a = present[i];
        if (!a) {
          Bs.push_back(at::zeros({members[i]->out_features(), 0}, first->B.options()));
          continue;
        }
        As.push_back(a->A);                                // [r_i, in]
        Bs.push_back(one_scaling ? a->B : a->B * a->scaling);  // [out_i, r_i]
      }
      const auto dt = lora_compute_dtype(x.scalar_type(), first->A.scalar_type());
      const double alpha = one_scaling ? first->scaling : 1.0;
      at::Tensor A = at::cat(As, 0).to(dt);          // [sum r, in]
      at::Tensor B = at::block_diag(Bs).to(dt);      // [sum out, sum r]
      at::Tensor down = at::mm(x2.to(dt), A.t());    // [N, sum r]
      // y is this function's own GEMM output, which mm/addmm do not save for backward: LoRA
      // accumulates into it in place.
      y = y.scalar_type() == dt ? y.addmm_(down, B.t(), 1, alpha) : y + at::mm(down, B.t()) * alpha;
    }
  }
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = y.size(1);
  return y.to(out_dtype).view(shape);  // [..., sum out]
}

}  // namespace lorafit
