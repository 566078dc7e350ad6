// TrainStateWrap: a native TrainState (optimizer moments + step count of one run) for a model.
// ModelWrap.createTrainState makes it; it Ref()s its model. step() is one whole optimizer step.
#pragma once
#include <napi.h>

#include <memory>

#include "model_wrap.h"
#include "train_state.h"

namespace lorafit_bindings {

class TrainStateWrap : public Napi::ObjectWrap<TrainStateWrap> {
 public:
  static void Init(Napi::Env env);
  static Napi::Object New(Napi::Env env, Napi::Value model_wrap, std::shared_ptr<lorafit::TrainState> state);
  explicit TrainStateWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<lorafit::TrainState> state(Napi::Env env) const;

  static Napi::FunctionReference constructor_;
  std::unique_ptr<ModelChild> parent_;
  std::shared_ptr<lorafit::TrainState> state_;
};

}  // namespace lorafit_bindings
