#include "convert.h"

#include <cstring>

#include "worker.h"

namespace lorafit_bindings {

at::Tensor ToLongTensor(Napi::Env env, Napi::Value value, const std::vector<int64_t>& shape, const std::string& what) {
  int64_t count = 1;
  for (auto d : shape) count *= d;
  at::Tensor out = at::empty(shape, at::kLong);
  int64_t* dst = out.data_ptr<int64_t>();
  auto check = [&](size_t n) {
    if (static_cast<int64_t>(n) != count)
      ThrowCoded(env, "E_SHAPE", what + " has " + std::to_string(n) + " elements but its shape needs " + std::to_string(count));
  };
  if (value.IsTypedArray()) {
    Napi::TypedArray ta = value.As<Napi::TypedArray>();
    check(ta.ElementLength());
    if (ta.TypedArrayType() == napi_int32_array) {
      auto a = value.As<Napi::Int32Array>();
      for (int64_t i = 0; i < count; ++i) dst[i] = a[i];
    } else if (ta.TypedArrayType() == napi_bigint64_array) {
      auto a = value.As<Napi::TypedArrayOf<int64_t>>();
      std::memcpy(dst, a.Data(), count * sizeof(int64_t));
    } else if (ta.TypedArrayType() == napi_uint8_array) {
      auto a = value.As<Napi::Uint8Array>();
      for (int64_t i = 0; i < count; ++i) dst[i] = a[i];
    } else {
      ThrowCoded(env, "E_INPUT", what + " must be an Int32Array, BigInt64Array or array of integers");
    }
    return out;
  }
  if (value.IsArray()) {
    Napi::Array a = value.As<Napi::Array>();
    check(a.Length());
    for (int64_t i = 0; i < count; ++i) {
      Napi::Value v = a.Get(static_cast<uint32_t>(i));
      if (!v.IsNumber()) ThrowCoded(env, "E_INPUT", what + "[" + std::to_string(i) + "] is not a number");
      dst[i] = v.As<Napi::Number>().Int64Value();
    }
    return out;
  }
  ThrowCoded(env, "E_INPUT", what + " must be an Int32Array, BigInt64Array or array of integers");
}

std::vector<int64_t> ToLongVector(Napi::Env env, Napi::Value value, const std::string& what) {
  const int64_t n = value.IsTypedArray() ? static_cast<int64_t>(value.As<Napi::TypedArray>().ElementLength())
                    : value.IsArray()    ? static_cast<int64_t>(value.As<Napi::Array>().Length())
                                         : -1;
  if (n < 0) ThrowCoded(env, "E_INPUT", what + " must be an Int32Array, BigInt64Array or array of integers");
  at::Tensor t = ToLongTensor(env, value, {n}, what);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

Napi::Float32Array ToFloat32Array(Napi::Env env, const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, c.numel());
  std::memcpy(out.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return out;
}

Napi::Array ToShape(Napi::Env env, at::IntArrayRef sizes) {
  Napi::Array a = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
  return a;
}

std::vector<int64_t> ToShapeVector(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsArray()) ThrowCoded(env, "E_INPUT", what + " must be an array of integers");
  Napi::Array a = value.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0) ThrowCoded(env, "E_INPUT", what + " must hold non-negative integers");
    out.push_back(v.As<Napi::Number>().Int64Value());
  }
  return out;
}

std::string OptString(Napi::Object o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}
bool OptBool(Napi::Object o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}
double OptNumber(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace lorafit_bindings
