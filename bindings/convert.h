// Conversions between JS values and tensors. Inputs are copied on the JS thread (JS memory may
// move once we return); outputs are copied into fresh typed arrays.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <string>
#include <utility>
#include <vector>

namespace lorafit_bindings {

// Int32Array | BigInt64Array | number[] with `count` elements -> int64 CPU tensor of `shape`.
at::Tensor ToLongTensor(Napi::Env env, Napi::Value value, const std::vector<int64_t>& shape, const std::string& what);
// Int32Array | BigInt64Array | number[] of any length -> int64 values (segment lengths).
std::vector<int64_t> ToLongVector(Napi::Env env, Napi::Value value, const std::string& what);
// A CPU float32 contiguous tensor -> Float32Array (copy).
Napi::Float32Array ToFloat32Array(Napi::Env env, const at::Tensor& t);
// A CPU contiguous tensor of any dtype -> its raw bytes as a Uint8Array (copy).
Napi::Uint8Array ToBytes(Napi::Env env, const at::Tensor& t);
Napi::Array ToShape(Napi::Env env, at::IntArrayRef sizes);
std::vector<int64_t> ToShapeVector(Napi::Env env, Napi::Value value, const std::string& what);
// Baton fields. lib/ sends complete options (the defaults live there), so a missing or mistyped
// field is a contract error (E_INPUT naming the field), never silently defaulted here.
std::string GetString(Napi::Object o, const char* key);
bool GetBool(Napi::Object o, const char* key);
double GetNumber(Napi::Object o, const char* key);
std::vector<std::string> GetStringList(Napi::Object o, const char* key);
// Present and not undefined (optional fields such as an attention mask).
bool Has(Napi::Object o, const char* key);
// argument i as an object (E_INPUT naming `call` otherwise)
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* call);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* call);

// Named tensors, the one shape in which tensors cross: [{ key, shape, data: Float32Array }].
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
NamedTensors ToNamedTensors(Napi::Env env, Napi::Value value, const std::string& what);  // CPU float32 copies
Napi::Array FromNamedTensors(Napi::Env env, const NamedTensors& tensors);                 // tensors: CPU float32 contiguous

}  // namespace lorafit_bindings
