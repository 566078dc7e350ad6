// Gradient checkpointing of one decoder layer: the forward pass keeps only the layer's input;
// backward recomputes the layer with gradients on (replaying the same dropout masks) and
// back-propagates through the recomputation.
#pragma once
#include <ATen/ATen.h>

#include "forward_context.h"
#include "layers/decoder_layer.h"

namespace lorafit {

at::Tensor checkpointed_layer(const DecoderLayer& layer, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                              const at::Tensor& bias, const ForwardContext& ctx);

}  // namespace lorafit
