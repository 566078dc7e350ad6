// bnb_format.h: NF4 weights in the bitsandbytes / transformers safetensors layout.
//
// A Params4bit weight of module M is stored (QuantState.as_dict(packed=True)) as:
//   M.weight                                   U8  [ceil(n/2), 1]  packed codes, high nibble first
//   M.weight.absmax                            U8  [nblocks] (double quant) | F32 [nblocks]
//   M.weight.quant_map                         F32 [16]            the NF4 code book
//   M.weight.nested_absmax                     F32 [ceil(nblocks/256)]       (double quant only)
//   M.weight.nested_quant_map                  F32 [256]                     (double quant only)
//   M.weight.quant_state.bitsandbytes__nf4     U8  [len]  UTF-8 JSON, json.dumps default separators:
//     {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [out, in],
//      "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0123...}
// (see test/interop/bnb_nf4_check.py for how this was established against bitsandbytes 0.50.2).
// config.json then carries transformers' "quantization_config" (quant_method "bitsandbytes").
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "quant.h"

namespace lorafit {

constexpr const char* kBnbNf4StateSuffix = ".quant_state.bitsandbytes__nf4";
constexpr const char* kBnbFp4StateSuffix = ".quant_state.bitsandbytes__fp4";

// (key, CPU tensor) pairs for weight key `key` (e.g. "model.layers.0.mlp.up_proj.weight"), in
// the order bitsandbytes writes them; U8 and F32 tensors only.
std::vector<std::pair<std::string, at::Tensor>> bnb_nf4_serialize(const Nf4Weight& q, const std::string& key);

// The JSON blob for q (byte for byte as Python's json.dumps writes it).
std::string bnb_nf4_state_json(const Nf4Weight& q);

// Reads the tensors above back. `get(name)` returns the stored tensor (any dtype, CPU) or an
// undefined tensor when absent. `expected_shape` is what config.json implies ([out, in]).
// Throws Error(E_QUANT_STATE) naming the tensor for anything malformed.
Nf4Weight bnb_nf4_deserialize(const std::function<at::Tensor(const std::string&)>& get, const std::string& key,
                              at::IntArrayRef expected_shape);

// "float32"/"bfloat16"/"float16" <-> dtype (as bitsandbytes writes str(dtype) without "torch.").
std::string bnb_dtype_name(at::ScalarType t);

}  // namespace lorafit
