#include "gguf.h"

#include <cmath>

#include "error.h"
#include "hf_config.h"
#include "worker.h"

namespace lorafit_bindings {

namespace {
constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// A JS number that is an integer in [lo, 2^53).
bool IsInteger(Napi::Value v, double lo) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && d == std::floor(d) && d >= lo && d <= kMaxSafeInteger;
}

Napi::Value GgufDequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "ggufDequantize(data: Uint8Array, type: number, count: number)";
  if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowCoded(env, "E_INPUT", std::string(usage) + ": data must be a Uint8Array");
  if (!IsInteger(info[1], -2147483648.0) || info[1].As<Napi::Number>().DoubleValue() > 2147483647.0)
    ThrowCoded(env, "E_INPUT", std::string(usage) + ": type must be a ggml type number");
  if (!IsInteger(info[2], 0)) ThrowCoded(env, "E_INPUT", std::string(usage) + ": count must be a non-negative integer");
  Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
  const auto type = static_cast<lorafit::GgmlType>(info[1].As<Napi::Number>().Int32Value());
  const auto count = static_cast<int64_t>(info[2].As<Napi::Number>().DoubleValue());
  GuardNative(env, [&] {
    const int64_t nbytes = lorafit::ggml_nbytes(type, count);
    if (static_cast<int64_t>(data.ByteLength()) != nbytes)
      throw lorafit::Error("E_GGUF", "ggufDequantize: " + std::to_string(count) + " values of " + lorafit::ggml_type_name(type) + " take " +
                                         std::to_string(nbytes) + " bytes, but data holds " + std::to_string(data.ByteLength()));
  });
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(count));
  GuardNative(env, [&] { lorafit::ggml_dequantize(type, data.Data(), count, out.Data()); });
  return out;
}
}  // namespace

bool ReadGgufOption(Napi::Env env, Napi::Object options, GgufSource* out) {
  if (!options.Has("gguf") || options.Get("gguf").IsUndefined()) return false;
  const std::string what = "loadModel options.gguf";
  if (!options.Get("gguf").IsObject()) ThrowCoded(env, "E_GGUF", what + " must be { configJson, tensors }");
  Napi::Object g = options.Get("gguf").As<Napi::Object>();
  if (!g.Get("configJson").IsString()) ThrowCoded(env, "E_GGUF", what + ".configJson must be a string (an HF config.json)");
  out->config_json = g.Get("configJson").As<Napi::String>().Utf8Value();
  if (!g.Get("tensors").IsArray()) ThrowCoded(env, "E_GGUF", what + ".tensors must be an array");
  Napi::Array tensors = g.Get("tensors").As<Napi::Array>();
  out->tensors.reserve(tensors.Length());
  for (uint32_t i = 0; i < tensors.Length(); ++i) {
    std::string where = what + ".tensors[" + std::to_string(i) + "]";
    if (!tensors.Get(i).IsObject()) ThrowCoded(env, "E_GGUF", where + " must be { name, offset, type, shape, permuteHeads?, add? }");
    Napi::Object t = tensors.Get(i).As<Napi::Object>();
    lorafit::GgufTensorRef ref;
    if (!t.Get("name").IsString()) ThrowCoded(env, "E_GGUF", where + ".name must be a string");
    ref.name = t.Get("name").As<Napi::String>().Utf8Value();
    where += " (tensor '" + ref.name + "')";
    if (!IsInteger(t.Get("offset"), 0)) ThrowCoded(env, "E_GGUF", where + ": offset must be a non-negative integer");
    ref.offset = static_cast<uint64_t>(t.Get("offset").As<Napi::Number>().DoubleValue());
    if (!IsInteger(t.Get("type"), 0) || t.Get("type").As<Napi::Number>().DoubleValue() > 2147483647.0)
      ThrowCoded(env, "E_GGUF", where + ": type must be a ggml type number");
    ref.type = static_cast<lorafit::GgmlType>(t.Get("type").As<Napi::Number>().Int32Value());
    if (!t.Get("shape").IsArray()) ThrowCoded(env, "E_GGUF", where + ": shape must be an array of integers");
    Napi::Array shape = t.Get("shape").As<Napi::Array>();
    for (uint32_t d = 0; d < shape.Length(); ++d) {
      if (!IsInteger(shape.Get(d), 0)) ThrowCoded(env, "E_GGUF", where + ": shape must be an array of non-negative integers");
      ref.shape.push_back(static_cast<int64_t>(shape.Get(d).As<Napi::Number>().DoubleValue()));
    }
    Napi::Value heads = t.Get("permuteHeads");
    if (!heads.IsUndefined()) {
      if (!IsInteger(heads, 0)) ThrowCoded(env, "E_GGUF", where + ": permuteHeads must be a non-negative integer");
      ref.permute_heads = static_cast<int64_t>(heads.As<Napi::Number>().DoubleValue());
    }
    Napi::Value add = t.Get("add");
    if (!add.IsUndefined()) {
      if (!add.IsNumber() || !std::isfinite(add.As<Napi::Number>().DoubleValue()))
        ThrowCoded(env, "E_GGUF", where + ": add must be a finite number");
      ref.add = add.As<Napi::Number>().FloatValue();
    }
    out->tensors.push_back(std::move(ref));
  }
  return true;
}

std::unique_ptr<lorafit::CausalLM> LoadGgufModel(const std::string& path, const GgufSource& source, const lorafit::LoadOptions& options) {
  const lorafit::ModelConfig config = lorafit::parse_config(source.config_json, path);
  lorafit::GgufWeights weights(path, source.tensors);
  return lorafit::CausalLM::load(config, weights, options, path);
}

void InitGguf(Napi::Env env, Napi::Object exports) { exports.Set("ggufDequantize", Napi::Function::New(env, GgufDequantize)); }

}  // namespace lorafit_bindings
