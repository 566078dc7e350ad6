// ModelWrap: the JS object of a native CausalLM. The model is shared with in-flight workers and
// with the objects made from it (AdapterWrap, TrainStateWrap, GenerationWrap, which Ref() this
// wrap), so dispose() while a call runs frees it only when that call ends.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>

#include "causal_lm.h"

namespace lorafit_bindings {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  // loadModel(dir, { dtype, device, quantize, doubleQuant, blockSize, gguf? }) -> Promise<ModelWrap>
  static Napi::Value Load(const Napi::CallbackInfo& info);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The live model; throws E_DISPOSED once disposed.
  std::shared_ptr<lorafit::CausalLM> model(Napi::Env env) const;
  static ModelWrap* FromValue(Napi::Env env, Napi::Value v);

 private:
  // The model itself (model_wrap.cc)
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ConfigJson(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value Warnings(const Napi::CallbackInfo& info);
  Napi::Value Parameter(const Napi::CallbackInfo& info);
  Napi::Value ParameterBytes(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // Adapters and training (model_train.cc)
  Napi::Value LinearNames(const Napi::CallbackInfo& info);
  Napi::Value SetFullTraining(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
  Napi::Value AddAdapter(const Napi::CallbackInfo& info);
  Napi::Value SetActiveAdapters(const Napi::CallbackInfo& info);
  Napi::Value CreateTrainState(const Napi::CallbackInfo& info);
  Napi::Value LossAndGrad(const Napi::CallbackInfo& info);
  Napi::Value EvalLoss(const Napi::CallbackInfo& info);
  // Quantized base (model_quant.cc)
  Napi::Value StorageReport(const Napi::CallbackInfo& info);
  Napi::Value Quantization(const Napi::CallbackInfo& info);
  Napi::Value QuantizedState(const Napi::CallbackInfo& info);
  // Generation (generation_wrap.cc)
  Napi::Value Generate(const Napi::CallbackInfo& info);
  // Runs fn(model) on the thread pool holding the model's mutex; resolves undefined.
  Napi::Value RunLocked(Napi::Env env, std::function<void(lorafit::CausalLM&)> fn);

  static Napi::FunctionReference constructor_;
  std::shared_ptr<lorafit::CausalLM> model_;
};

// What every object made from a model holds: a reference that keeps the ModelWrap alive (so the
// model outlives its children in JS too) and the way back to the live model.
class ModelChild {
 public:
  ModelChild(Napi::Env env, Napi::Value model_wrap) : parent_(ModelWrap::FromValue(env, model_wrap)) {
    model_ref_ = Napi::Persistent(model_wrap.As<Napi::Object>());
  }
  std::shared_ptr<lorafit::CausalLM> model(Napi::Env env) const { return parent_->model(env); }

 private:
  ModelWrap* parent_;
  Napi::ObjectReference model_ref_;
};

}  // namespace lorafit_bindings
