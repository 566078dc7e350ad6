#include "convert.h"

#include <cstring>

#include "safetensors.h"
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

Napi::Uint8Array ToBytes(Napi::Env env, const at::Tensor& t) {
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::Uint8Array bytes = Napi::Uint8Array::New(env, nbytes);
  if (nbytes) std::memcpy(bytes.Data(), t.data_ptr(), nbytes);
  return bytes;
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

namespace {
[[noreturn]] void BadField(Napi::Env env, const char* key, const char* type) {
  ThrowCoded(env, "E_INPUT", std::string("native option '") + key + "' must be " + type + " (lib/ sends every field)");
}
}  // namespace

std::string GetString(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) BadField(o.Env(), key, "a string");
  return v.As<Napi::String>().Utf8Value();
}
bool GetBool(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) BadField(o.Env(), key, "a boolean");
  return v.As<Napi::Boolean>().Value();
}
double GetNumber(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) BadField(o.Env(), key, "a number");
  return v.As<Napi::Number>().DoubleValue();
}
std::vector<std::string> GetStringList(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) BadField(o.Env(), key, "an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsString()) BadField(o.Env(), key, "an array of strings");
    out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}
bool Has(Napi::Object o, const char* key) { return o.Has(key) && !o.Get(key).IsUndefined(); }

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* call) {
  if (info.Length() <= i || !info[i].IsObject()) ThrowCoded(info.Env(), "E_INPUT", std::string(call) + ": argument " + std::to_string(i + 1) + " must be an object");
  return info[i].As<Napi::Object>();
}
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* call) {
  if (info.Length() <= i || !info[i].IsString()) ThrowCoded(info.Env(), "E_INPUT", std::string(call) + ": argument " + std::to_string(i + 1) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

NamedTensors ToNamedTensors(Napi::Env env, Napi::Value value, const std::string& what) {
  if (!value.IsArray()) ThrowCoded(env, "E_INPUT", what + " must be an array of { key, shape, data }");
  Napi::Array a = value.As<Napi::Array>();
  NamedTensors out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) ThrowCoded(env, "E_INPUT", what + "[" + std::to_string(i) + "] must be an object");
    Napi::Object e = a.Get(i).As<Napi::Object>();
    if (!e.Get("key").IsString()) ThrowCoded(env, "E_INPUT", what + "[" + std::to_string(i) + "].key must be a string");
    const std::string key = e.Get("key").As<Napi::String>().Utf8Value();
    auto shape = ToShapeVector(env, e.Get("shape"), key + ".shape");
    Napi::Value d = e.Get("data");
    if (!d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      ThrowCoded(env, "E_INPUT", key + ": data must be a Float32Array");
    auto data = d.As<Napi::Float32Array>();
    at::Tensor t = at::empty(shape, at::kFloat);
    if (static_cast<int64_t>(data.ElementLength()) != t.numel())
      ThrowCoded(env, "E_SHAPE", key + ": " + std::to_string(data.ElementLength()) + " values for shape " + lorafit::shape_string(shape));
    if (t.numel() > 0) std::memcpy(t.data_ptr<float>(), data.Data(), t.numel() * sizeof(float));
    out.emplace_back(key, std::move(t));
  }
  return out;
}

Napi::Array FromNamedTensors(Napi::Env env, const NamedTensors& tensors) {
  Napi::Array a = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("key", tensors[i].first);
    e.Set("shape", ToShape(env, tensors[i].second.sizes()));
    e.Set("data", ToFloat32Array(env, tensors[i].second));
    a.Set(static_cast<uint32_t>(i), e);
  }
  return a;
}

}  // namespace lorafit_bindings
