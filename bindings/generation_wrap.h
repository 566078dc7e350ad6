// GenerationWrap: one generation session (KV cache, sampler) on a model, decoded a few tokens per
// call so that JavaScript can stream, stop and cancel between calls. ModelWrap.generate makes it;
// it Ref()s its model. dispose() frees the cache (idempotent).
#pragma once
#include <napi.h>

#include <memory>

#include "generate.h"
#include "model_wrap.h"

namespace lorafit_bindings {

class GenerationWrap : public Napi::ObjectWrap<GenerationWrap> {
 public:
  static void Init(Napi::Env env);
  static Napi::Object New(Napi::Env env, Napi::Value model_wrap, std::shared_ptr<lorafit::GenerationSession> session);
  explicit GenerationWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Next(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  static Napi::FunctionReference constructor_;
  std::unique_ptr<ModelChild> parent_;
  std::shared_ptr<lorafit::GenerationSession> session_;
};

}  // namespace lorafit_bindings
