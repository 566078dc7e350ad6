// ModelWrap: the JS handle of a native CausalLM. The model is shared with in-flight workers
// (shared_ptr), so dispose() while a call runs frees it only when that call ends.
#pragma once
#include <napi.h>

#include <functional>
#include <map>
#include <memory>

#include "causal_lm.h"
#include "generate.h"

namespace lorafit_bindings {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  // loadModel(dir, { dtype, device, quantize?, doubleQuant?, blockSize?, gguf? }) -> Promise<ModelWrap>
  static Napi::Value Load(const Napi::CallbackInfo& info);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  std::shared_ptr<lorafit::CausalLM> model(Napi::Env env) const;
  static ModelWrap* Unwrap(Napi::Value v) { return Napi::ObjectWrap<ModelWrap>::Unwrap(v.As<Napi::Object>()); }

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ConfigJson(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value Warnings(const Napi::CallbackInfo& info);
  Napi::Value Parameter(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  // LoRA adapters and training (model_lora.cc)
  Napi::Value LinearNames(const Napi::CallbackInfo& info);
  Napi::Value SetFullTraining(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
  Napi::Value AddAdapter(const Napi::CallbackInfo& info);
  Napi::Value DeleteAdapter(const Napi::CallbackInfo& info);
  Napi::Value SetActiveAdapters(const Napi::CallbackInfo& info);
  Napi::Value AdapterState(const Napi::CallbackInfo& info);
  Napi::Value SetAdapterState(const Napi::CallbackInfo& info);
  Napi::Value MergeAdapter(const Napi::CallbackInfo& info);
  Napi::Value LossAndGrad(const Napi::CallbackInfo& info);
  Napi::Value EvalLoss(const Napi::CallbackInfo& info);
  Napi::Value OptimizerStep(const Napi::CallbackInfo& info);
  Napi::Value OptimizerState(const Napi::CallbackInfo& info);
  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info);
  // Quantized base (model_quant.cc)
  Napi::Value StorageReport(const Napi::CallbackInfo& info);
  Napi::Value Quantization(const Napi::CallbackInfo& info);
  Napi::Value QuantizedState(const Napi::CallbackInfo& info);
  // Generation sessions (model_generate.cc)
  Napi::Value GenerateStart(const Napi::CallbackInfo& info);
  Napi::Value GenerateNext(const Napi::CallbackInfo& info);
  Napi::Value GenerateEnd(const Napi::CallbackInfo& info);
  std::map<int64_t, std::shared_ptr<lorafit::GenerationSession>> sessions_;
  int64_t next_session_ = 1;
  // Runs fn(model) on the thread pool holding the model's mutex; resolves undefined.
  Napi::Value RunLocked(Napi::Env env, std::function<void(lorafit::CausalLM&)> fn);

  static Napi::FunctionReference constructor_;
  std::shared_ptr<lorafit::CausalLM> model_;
};

}  // namespace lorafit_bindings
