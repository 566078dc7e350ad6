// Conversions between JS values and tensors. Inputs are copied on the JS thread (JS memory may
// move once we return); outputs are copied into fresh typed arrays.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <string>
#include <vector>

namespace lorafit_bindings {

// Int32Array | BigInt64Array | number[] with `count` elements -> int64 CPU tensor of `shape`.
at::Tensor ToLongTensor(Napi::Env env, Napi::Value value, const std::vector<int64_t>& shape, const std::string& what);
// Int32Array | BigInt64Array | number[] of any length -> int64 values (segment lengths).
std::vector<int64_t> ToLongVector(Napi::Env env, Napi::Value value, const std::string& what);
// A CPU float32 contiguous tensor -> Float32Array (copy).
Napi::Float32Array ToFloat32Array(Napi::Env env, const at::Tensor& t);
Napi::Array ToShape(Napi::Env env, at::IntArrayRef sizes);
std::vector<int64_t> ToShapeVector(Napi::Env env, Napi::Value value, const std::string& what);
std::string OptString(Napi::Object o, const char* key, const std::string& fallback);
bool OptBool(Napi::Object o, const char* key, bool fallback);
double OptNumber(Napi::Object o, const char* key, double fallback);

}  // namespace lorafit_bindings
