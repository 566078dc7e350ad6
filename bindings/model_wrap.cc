#include "model_wrap.h"

#include <ATen/core/grad_mode.h>

#include <cstring>

#include "convert.h"
#include "error.h"
#include "gguf.h"
#include "loss.h"
#include "runtime.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::FunctionReference ModelWrap::constructor_;

Napi::Object ModelWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModel",
                                   {InstanceMethod("forward", &ModelWrap::Forward),
                                    InstanceMethod("configJson", &ModelWrap::ConfigJson),
                                    InstanceMethod("numParameters", &ModelWrap::NumParameters),
                                    InstanceMethod("warnings", &ModelWrap::Warnings),
                                    InstanceMethod("parameter", &ModelWrap::Parameter),
                                    InstanceMethod("parameterBytes", &ModelWrap::ParameterBytes),
                                    InstanceMethod("parameterNames", &ModelWrap::ParameterNames),
                                    InstanceMethod("dispose", &ModelWrap::Dispose),
                                    InstanceMethod("linearNames", &ModelWrap::LinearNames),
                                    InstanceMethod("setFullTraining", &ModelWrap::SetFullTraining),
                                    InstanceMethod("loadWeights", &ModelWrap::LoadWeights),
                                    InstanceMethod("addAdapter", &ModelWrap::AddAdapter),
                                    InstanceMethod("setActiveAdapters", &ModelWrap::SetActiveAdapters),
                                    InstanceMethod("createTrainState", &ModelWrap::CreateTrainState),
                                    InstanceMethod("lossAndGrad", &ModelWrap::LossAndGrad),
                                    InstanceMethod("evalLoss", &ModelWrap::EvalLoss),
                                    InstanceMethod("storageReport", &ModelWrap::StorageReport),
                                    InstanceMethod("quantization", &ModelWrap::Quantization),
                                    InstanceMethod("quantizedState", &ModelWrap::QuantizedState),
                                    InstanceMethod("generate", &ModelWrap::Generate)});
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
  exports.Set("loadModel", Napi::Function::New(env, &ModelWrap::Load));
  return exports;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    ThrowCoded(info.Env(), "E_INPUT", "NativeModel cannot be constructed directly; use loadModel()");
  auto* holder = info[0].As<Napi::External<std::shared_ptr<lorafit::CausalLM>>>().Data();
  model_ = *holder;
}

ModelWrap* ModelWrap::FromValue(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(constructor_.Value())) ThrowCoded(env, "E_INPUT", "expected a NativeModel");
  return Napi::ObjectWrap<ModelWrap>::Unwrap(v.As<Napi::Object>());
}

std::shared_ptr<lorafit::CausalLM> ModelWrap::model(Napi::Env env) const {
  if (!model_) ThrowCoded(env, "E_DISPOSED", "this model was disposed");
  return model_;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowCoded(env, "E_INPUT", "loadModel(dir, options): dir must be a string");
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Object opts = ArgObject(info, 1, "loadModel(dir, options)");
  lorafit::LoadOptions options;
  const std::string dtype = GetString(opts, "dtype");
  const std::string device = GetString(opts, "device");
  const std::string quantize = GetString(opts, "quantize");
  options.double_quant = GetBool(opts, "doubleQuant");
  options.block_size = static_cast<int64_t>(GetNumber(opts, "blockSize"));
  GuardNative(env, [&] {
    options.dtype = lorafit::parse_dtype(dtype);
    options.device = lorafit::parse_device(device);
    if (quantize == "nf4") options.quantize = lorafit::QuantKind::kNf4;
    else if (quantize == "int8") options.quantize = lorafit::QuantKind::kInt8;
    else if (quantize != "none") throw lorafit::Error("E_OPTION", "option 'quantize' must be 'nf4' or 'int8', got '" + quantize + "'");
  });
  // options.gguf: `dir` is a .gguf file whose tensor table lib/gguf has read (gguf.cc).
  auto gguf = std::make_shared<GgufSource>();
  const bool from_gguf = ReadGgufOption(env, opts, gguf.get());
  auto result = std::make_shared<std::shared_ptr<lorafit::CausalLM>>();
  return PromiseWorker::Start(
      env,
      [dir, options, result, from_gguf, gguf] {
        at::NoGradGuard no_grad;
        *result = std::shared_ptr<lorafit::CausalLM>(from_gguf ? LoadGgufModel(dir, *gguf, options) : lorafit::CausalLM::load(dir, options));
      },
      [result](Napi::Env env) -> Napi::Value {
        auto external = Napi::External<std::shared_ptr<lorafit::CausalLM>>::New(env, result.get());
        return constructor_.New({external});
      });
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 2) ThrowCoded(env, "E_INPUT", "forward(inputIds, shape, options)");
  const std::vector<int64_t> shape = ToShapeVector(env, info[1], "shape");
  if (shape.size() != 2) ThrowCoded(env, "E_SHAPE", "shape must be [batch, seq]");
  at::Tensor ids = ToLongTensor(env, info[0], shape, "inputIds");
  Napi::Object opts = ArgObject(info, 2, "forward(inputIds, shape, options)");
  lorafit::ForwardOptions fo;
  if (Has(opts, "attentionMask")) fo.attention_mask = ToLongTensor(env, opts.Get("attentionMask"), shape, "attentionMask");
  if (Has(opts, "positionIds")) fo.position_ids = ToLongTensor(env, opts.Get("positionIds"), shape, "positionIds");
  if (Has(opts, "segments")) fo.segments = ToLongVector(env, opts.Get("segments"), "segments");
  fo.last_only = GetBool(opts, "lastOnly");
  fo.output_hidden_states = GetBool(opts, "outputHiddenStates");

  struct Result {
    at::Tensor logits;
    std::vector<at::Tensor> hidden;
  };
  auto result = std::make_shared<Result>();
  return PromiseWorker::Start(
      env,
      [model, ids, fo, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        at::NoGradGuard no_grad;
        auto out = model->forward(ids, fo, model->context());
        result->logits = out.logits.to(at::kCPU, at::kFloat).contiguous();
        for (auto& h : out.hidden_states) result->hidden.push_back(h.to(at::kCPU, at::kFloat).contiguous());
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("logits", ToFloat32Array(env, result->logits));
        o.Set("shape", ToShape(env, result->logits.sizes()));
        if (!result->hidden.empty()) {
          Napi::Array hs = Napi::Array::New(env, result->hidden.size());
          for (size_t i = 0; i < result->hidden.size(); ++i) hs.Set(static_cast<uint32_t>(i), ToFloat32Array(env, result->hidden[i]));
          o.Set("hiddenStates", hs);
          o.Set("hiddenShape", ToShape(env, result->hidden[0].sizes()));
        }
        return o;
      },
      Value());
}

Napi::Value ModelWrap::ConfigJson(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), lorafit::config_to_json(model(info.Env())->config()));
}

Napi::Value ModelWrap::NumParameters(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(model(info.Env())->num_parameters()));
}

Napi::Value ModelWrap::Warnings(const Napi::CallbackInfo& info) {
  const auto& w = model(info.Env())->load_warnings();
  Napi::Array a = Napi::Array::New(info.Env(), w.size());
  for (size_t i = 0; i < w.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), w[i]));
  return a;
}

Napi::Value ModelWrap::ParameterNames(const Napi::CallbackInfo& info) {
  auto params = model(info.Env())->parameter_names();
  Napi::Array a = Napi::Array::New(info.Env(), params.size());
  for (size_t i = 0; i < params.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), params[i]));
  return a;
}

Napi::Value ModelWrap::Parameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 1 || !info[0].IsString()) ThrowCoded(env, "E_INPUT", "parameter(name)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  auto result = std::make_shared<at::Tensor>();
  return PromiseWorker::Start(
      env,
      [model, name, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        // a quantized projection comes back dequantized (to the compute dtype, then float32)
        *result = model->parameter(name).detach().to(at::kCPU, at::kFloat).contiguous();
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("shape", ToShape(env, result->sizes()));
        o.Set("data", ToFloat32Array(env, *result));
        return o;
      },
      Value());
}

// parameterBytes(name, dtype) -> Promise<{ shape, bytes: Uint8Array }>: one weight converted by
// libtorch to float32 / bfloat16 / float16 (round to nearest even, as torch's .to()), raw
// little-endian, for Model.save.
Napi::Value ModelWrap::ParameterBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  const std::string name = ArgString(info, 0, "parameterBytes(name, dtype)");
  const std::string dtype_name = ArgString(info, 1, "parameterBytes(name, dtype)");
  at::ScalarType dtype = at::kFloat;
  GuardNative(env, [&] { dtype = lorafit::parse_dtype(dtype_name); });
  auto result = std::make_shared<at::Tensor>();
  return PromiseWorker::Start(
      env,
      [model, name, dtype, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *result = model->parameter(name).detach().to(at::kCPU, dtype).contiguous();
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("shape", ToShape(env, result->sizes()));
        o.Set("bytes", ToBytes(env, *result));
        return o;
      },
      Value());
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();  // in-flight workers hold their own reference
  lorafit::release_loss_buffers();
  return info.Env().Undefined();
}

}  // namespace lorafit_bindings
