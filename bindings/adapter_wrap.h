// AdapterWrap: one LoRA adapter attached to a model (ModelWrap.addAdapter makes it). It Ref()s
// its model; delete() removes the adapter from the model and disposes the wrap (idempotent).
#pragma once
#include <napi.h>

#include <string>

#include "model_wrap.h"

namespace lorafit_bindings {

class AdapterWrap : public Napi::ObjectWrap<AdapterWrap> {
 public:
  static void Init(Napi::Env env);
  // A new wrap for the adapter `name` of the model behind `model_wrap`.
  static Napi::Object New(Napi::Env env, Napi::Value model_wrap, const std::string& name);
  static AdapterWrap* FromValue(Napi::Env env, Napi::Value v);
  explicit AdapterWrap(const Napi::CallbackInfo& info);

  const std::string& name() const { return name_; }

 private:
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Merge(const Napi::CallbackInfo& info);
  Napi::Value CombineFrom(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  std::shared_ptr<lorafit::CausalLM> live_model(Napi::Env env) const;

  static Napi::FunctionReference constructor_;
  std::unique_ptr<ModelChild> parent_;
  std::string name_;
  bool deleted_ = false;
};

}  // namespace lorafit_bindings
