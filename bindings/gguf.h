// GGUF from JS: the `gguf` option of loadModel (a tensor table read by lib/gguf) and
// ggufDequantize (sync, for tests and tools).
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "causal_lm.h"
#include "gguf_weights.h"

namespace lorafit_bindings {

struct GgufSource {
  std::string config_json;                      // an HF config.json mapped from the GGUF metadata
  std::vector<lorafit::GgufTensorRef> tensors;  // under HF names
};

// Reads options.gguf = { configJson, tensors: [{ name, offset, type, shape, permuteHeads?, add? }] }.
// Returns false when absent; throws a JS Error (code E_GGUF) when malformed.
bool ReadGgufOption(Napi::Env env, Napi::Object options, GgufSource* out);
// In a worker: parse_config + GgufWeights + CausalLM::load.
std::unique_ptr<lorafit::CausalLM> LoadGgufModel(const std::string& path, const GgufSource& source, const lorafit::LoadOptions& options);
// Registers ggufDequantize(data: Uint8Array, type: number, count: number): Float32Array.
void InitGguf(Napi::Env env, Napi::Object exports);

}  // namespace lorafit_bindings
