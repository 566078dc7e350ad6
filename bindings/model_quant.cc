// ModelWrap methods for a quantized base: storage report, quantization settings and the
// bitsandbytes-layout tensors of one NF4 weight (for Model.save). Conversion only; the maths is
// in native/quant.cc and native/bnb_format.cc.
#include <cstring>

#include "bnb_format.h"
#include "convert.h"
#include "error.h"
#include "model_wrap.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::Value ModelWrap::StorageReport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  auto r = std::make_shared<lorafit::StorageReport>();
  return PromiseWorker::Start(
      env,
      [model, r] {
        std::lock_guard<std::mutex> lock(model->mutex());  // a merge may be changing the layers
        *r = model->storage_report();
      },
      [r](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        auto num = [&](const char* k, int64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
        num("linearParams", r->linear_params);
        num("linearBytes", r->linear_bytes);
        num("quantizedParams", r->quantized_params);
        num("quantizedBytes", r->quantized_bytes);
        num("otherParams", r->other_params);
        num("otherBytes", r->other_bytes);
        num("projectionGroups", r->projection_groups);
        num("fusedProjectionGroups", r->fused_projection_groups);
        return o;
      },
      Value());
}

Napi::Value ModelWrap::Quantization(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (model->quantization() == lorafit::QuantKind::kNone) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::String::New(env, lorafit::quant_kind_name(model->quantization())));
  o.Set("doubleQuant", Napi::Boolean::New(env, model->double_quant()));
  o.Set("blockSize", Napi::Number::New(env, static_cast<double>(model->block_size())));
  o.Set("prequantized", Napi::Boolean::New(env, model->prequantized()));
  return o;
}

// quantizedState(weightName) -> Promise<[{ key, dtype: 'U8' | 'F32', shape, bytes: Uint8Array }] | null>
Napi::Value ModelWrap::QuantizedState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 1 || !info[0].IsString()) ThrowCoded(env, "E_INPUT", "quantizedState(name)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  auto result = std::make_shared<std::vector<std::pair<std::string, at::Tensor>>>();
  auto found = std::make_shared<bool>(false);
  return PromiseWorker::Start(
      env,
      [model, name, result, found] {
        std::lock_guard<std::mutex> lock(model->mutex());
        const lorafit::QuantizedWeight* q = model->quantized_weight(name);
        if (!q) return;
        if (q->kind() != lorafit::QuantKind::kNf4)
          throw lorafit::Error("E_QUANTIZED", "'" + name + "' is int8-quantized; only NF4 weights have a bitsandbytes layout here");
        *found = true;
        *result = lorafit::bnb_nf4_serialize(q->nf4(), name);
      },
      [result, found](Napi::Env env) -> Napi::Value {
        if (!*found) return env.Null();
        Napi::Array a = Napi::Array::New(env, result->size());
        for (size_t i = 0; i < result->size(); ++i) {
          const auto& [key, t] = (*result)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("key", Napi::String::New(env, key));
          o.Set("dtype", Napi::String::New(env, t.scalar_type() == at::kByte ? "U8" : "F32"));
          o.Set("shape", ToShape(env, t.sizes()));
          o.Set("bytes", ToBytes(env, t));
          a.Set(static_cast<uint32_t>(i), o);
        }
        return a;
      },
      Value());
}

}  // namespace lorafit_bindings
