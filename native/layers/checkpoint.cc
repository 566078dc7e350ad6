#include "layers/checkpoint.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// An undefined bias (plain causal attention) cannot pass through Function::apply; it travels as
// an empty tensor.
at::Tensor encode_bias(const at::Tensor& bias) { return bias.defined() ? bias : at::empty({0}); }
at::Tensor decode_bias(const at::Tensor& bias) { return bias.numel() == 0 ? at::Tensor() : bias; }

struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(AutogradContext* ac, const at::Tensor& x, const DecoderLayer* layer, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& bias, const ForwardContext* ctx) {
    ForwardContext replay = *ctx;
    if (ctx->generator.defined()) replay.generator = ctx->generator.clone();  // same dropout masks on recompute
    ac->saved_data["x"] = x.detach();
    ac->saved_data["cos"] = cos;
    ac->saved_data["sin"] = sin;
    ac->saved_data["bias"] = bias;
    ac->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ac->saved_data["ctx"] = reinterpret_cast<int64_t>(new ForwardContext(replay));
    return layer->forward(x, cos, sin, decode_bias(bias), *ctx);  // grad mode is off inside forward()
  }

  static variable_list backward(AutogradContext* ac, variable_list grads) {
    const auto* layer = reinterpret_cast<const DecoderLayer*>(ac->saved_data["layer"].toInt());
    std::unique_ptr<ForwardContext> ctx(reinterpret_cast<ForwardContext*>(ac->saved_data["ctx"].toInt()));
    at::Tensor x = ac->saved_data["x"].toTensor().detach().requires_grad_(true);
    at::Tensor y;
    {
      at::AutoGradMode enable(true);
      y = layer->forward(x, ac->saved_data["cos"].toTensor(), ac->saved_data["sin"].toTensor(), decode_bias(ac->saved_data["bias"].toTensor()), *ctx);
    }
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed_layer(const DecoderLayer& layer, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const at::Tensor& bias, const ForwardContext& ctx) {
  // The output of a custom autograd function requires grad only if an input does; the first
  // layer's input (frozen embeddings) does not, so give it a leaf that does.
  at::Tensor input = x.requires_grad() ? x : x.detach().requires_grad_(true);
  return CheckpointedLayer::apply(input, &layer, cos, sin, encode_bias(bias), &ctx);
}

}  // namespace lorafit
