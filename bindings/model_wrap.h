// ModelWrap: the JS handle of a native CausalLM. The model is shared with in-flight workers
// (shared_ptr), so dispose() while a call runs frees it only when that call ends.
#pragma once
#include <napi.h>

#include <memory>

#include "causal_lm.h"

namespace lorafit_bindings {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  // loadModel(dir, { dtype, device }) -> Promise<ModelWrap>
  static Napi::Value Load(const Napi::CallbackInfo& info);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  std::shared_ptr<lorafit::CausalLM> model(Napi::Env env) const;
  static ModelWrap* Unwrap(Napi::Value v) { return Napi::ObjectWrap<ModelWrap>::Unwrap(v.As<Napi::Object>()); }

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ConfigJson(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value Warnings(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  static Napi::FunctionReference constructor_;
  std::shared_ptr<lorafit::CausalLM> model_;
};

}  // namespace lorafit_bindings
