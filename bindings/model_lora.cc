// ModelWrap methods for LoRA adapters and training steps. Conversion and scheduling only; the
// maths is in native/lora_adapter.cc and native/train_step.cc.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cstring>

#include "convert.h"
#include "error.h"
#include "lora_adapter.h"
#include "model_wrap.h"
#include "safetensors.h"
#include "train_step.h"
#include "worker.h"

namespace lorafit_bindings {

namespace {

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) ThrowCoded(info.Env(), "E_INPUT", std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<std::string> StringList(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsArray()) ThrowCoded(env, "E_INPUT", std::string(what) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsString()) ThrowCoded(env, "E_INPUT", std::string(what) + " must be an array of strings");
    out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

// [{ inputIds, labels, attentionMask?, segments?, shape: [B, T] }] -> micro-batches (copied now, on the JS thread)
std::vector<lorafit::MicroBatch> ToMicroBatches(Napi::Env env, Napi::Value v) {
  if (!v.IsArray()) ThrowCoded(env, "E_INPUT", "batches must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<lorafit::MicroBatch> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) ThrowCoded(env, "E_INPUT", "batches[" + std::to_string(i) + "] must be an object");
    Napi::Object o = a.Get(i).As<Napi::Object>();
    const std::string where = "batches[" + std::to_string(i) + "]";
    auto shape = ToShapeVector(env, o.Get("shape"), where + ".shape");
    if (shape.size() != 2) ThrowCoded(env, "E_SHAPE", where + ".shape must be [batch, seq]");
    lorafit::MicroBatch mb;
    mb.input_ids = ToLongTensor(env, o.Get("inputIds"), shape, where + ".inputIds");
    mb.labels = ToLongTensor(env, o.Get("labels"), shape, where + ".labels");
    if (o.Has("attentionMask") && !o.Get("attentionMask").IsUndefined())
      mb.attention_mask = ToLongTensor(env, o.Get("attentionMask"), shape, where + ".attentionMask");
    if (o.Has("segments") && !o.Get("segments").IsUndefined()) mb.segments = ToLongVector(env, o.Get("segments"), where + ".segments");
    out.push_back(std::move(mb));
  }
  return out;
}

struct NamedTensor {
  std::string key;
  at::Tensor value;  // CPU float32 contiguous
};

}  // namespace

Napi::Value ModelWrap::RunLocked(Napi::Env env, std::function<void(lorafit::CausalLM&)> fn) {
  auto model = this->model(env);
  return PromiseWorker::Start(
      env,
      [model, fn] {
        std::lock_guard<std::mutex> lock(model->mutex());
        fn(*model);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

Napi::Value ModelWrap::LinearNames(const Napi::CallbackInfo& info) {
  auto model = this->model(info.Env());
  auto linears = model->named_linears();
  Napi::Array a = Napi::Array::New(info.Env(), linears.size());
  for (size_t i = 0; i < linears.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), linears[i].first));
  return a;
}

Napi::Value ModelWrap::AddAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowCoded(env, "E_INPUT", "addAdapter(spec)");
  Napi::Object o = info[0].As<Napi::Object>();
  lorafit::LoraSpec spec;
  spec.name = OptString(o, "name", "default");
  spec.rank = static_cast<int64_t>(OptNumber(o, "rank", 8));
  spec.alpha = OptNumber(o, "alpha", static_cast<double>(spec.rank));
  spec.dropout = OptNumber(o, "dropout", 0);
  spec.rslora = OptBool(o, "rslora", false);
  spec.init = OptString(o, "init", "kaiming");
  spec.seed = static_cast<uint64_t>(OptNumber(o, "seed", 0));
  spec.targets = StringList(env, o.Get("targets"), "spec.targets");
  return RunLocked(env, [spec](lorafit::CausalLM& m) { lorafit::add_adapter(m, spec); });
}

Napi::Value ModelWrap::SetFullTraining(const Napi::CallbackInfo& info) {
  const bool on = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  return RunLocked(info.Env(), [on](lorafit::CausalLM& m) { m.set_full_training(on); });
}

Napi::Value ModelWrap::LoadWeights(const Napi::CallbackInfo& info) {
  std::string dir = ArgString(info, 0, "dir");
  return RunLocked(info.Env(), [dir](lorafit::CausalLM& m) { m.load_weights(dir); });
}

Napi::Value ModelWrap::DeleteAdapter(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  return RunLocked(info.Env(), [name](lorafit::CausalLM& m) { lorafit::delete_adapter(m, name); });
}

Napi::Value ModelWrap::SetActiveAdapters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = StringList(env, info.Length() ? info[0] : env.Undefined(), "names");
  return RunLocked(env, [names](lorafit::CausalLM& m) {
    for (const auto& n : names)
      if (!lorafit::has_adapter(m, n)) throw lorafit::Error("E_ADAPTER", "no adapter named '" + n + "'");
    m.active_adapters() = names;
  });
}

Napi::Value ModelWrap::AdapterState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  const std::string name = ArgString(info, 0, "name");
  const bool grads = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  auto result = std::make_shared<std::vector<NamedTensor>>();
  return PromiseWorker::Start(
      env,
      [model, name, grads, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        for (auto& [key, t] : lorafit::adapter_tensors(*model, name)) {
          at::Tensor v = grads ? t.grad() : t.detach();
          if (!v.defined()) v = at::zeros_like(t);
          result->push_back({key, v.to(at::kCPU, at::kFloat).contiguous()});
        }
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, result->size());
        for (size_t i = 0; i < result->size(); ++i) {
          Napi::Object e = Napi::Object::New(env);
          e.Set("key", (*result)[i].key);
          e.Set("shape", ToShape(env, (*result)[i].value.sizes()));
          e.Set("data", ToFloat32Array(env, (*result)[i].value));
          a.Set(static_cast<uint32_t>(i), e);
        }
        return a;
      },
      Value());
}

Napi::Value ModelWrap::SetAdapterState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = ArgString(info, 0, "name");
  if (info.Length() < 2 || !info[1].IsArray()) ThrowCoded(env, "E_INPUT", "setAdapterState(name, entries)");
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<NamedTensor> entries;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object e = a.Get(i).As<Napi::Object>();
    const std::string key = e.Get("key").As<Napi::String>().Utf8Value();
    auto shape = ToShapeVector(env, e.Get("shape"), key + ".shape");
    if (!e.Get("data").IsTypedArray() || e.Get("data").As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      ThrowCoded(env, "E_INPUT", key + ": data must be a Float32Array");
    auto data = e.Get("data").As<Napi::Float32Array>();
    at::Tensor t = at::empty(shape, at::kFloat);
    if (static_cast<int64_t>(data.ElementLength()) != t.numel())
      ThrowCoded(env, "E_SHAPE", key + ": " + std::to_string(data.ElementLength()) + " values for shape " + lorafit::shape_string(shape));
    std::memcpy(t.data_ptr<float>(), data.Data(), t.numel() * sizeof(float));
    entries.push_back({key, t});
  }
  return RunLocked(env, [name, entries](lorafit::CausalLM& m) {
    // Check every entry before writing any, so a bad file leaves the adapter as it was.
    auto live = lorafit::adapter_tensors(m, name);
    for (const auto& e : entries) {
      bool found = false;
      for (auto& [k, t] : live)
        if (k == e.key) {
          found = true;
          if (t.sizes() != e.value.sizes())
            throw lorafit::Error("E_SHAPE", "adapter tensor '" + e.key + "' has shape " + lorafit::shape_string(e.value.sizes()) +
                                                " but the model needs " + lorafit::shape_string(t.sizes()));
        }
      if (!found) throw lorafit::Error("E_ADAPTER", "adapter '" + name + "' has no tensor '" + e.key + "'");
    }
    for (const auto& e : entries) lorafit::set_adapter_tensor(m, name, e.key, e.value);
  });
}

Napi::Value ModelWrap::MergeAdapter(const Napi::CallbackInfo& info) {
  const std::string name = ArgString(info, 0, "name");
  const std::string mode = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "merge";
  return RunLocked(info.Env(), [name, mode](lorafit::CausalLM& m) {
    if (mode == "merge") lorafit::merge_adapter(m, name);
    else if (mode == "unmerge") lorafit::unmerge_adapter(m, name);
    else if (mode == "unload") lorafit::merge_and_unload(m, name);
    else throw lorafit::Error("E_INPUT", "merge mode must be merge, unmerge or unload");
  });
}

Napi::Value ModelWrap::LossAndGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  auto batches = ToMicroBatches(env, info.Length() ? info[0] : env.Undefined());
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const uint64_t seed = static_cast<uint64_t>(OptNumber(opts, "dropoutSeed", 0));
  const bool checkpointing = OptBool(opts, "gradientCheckpointing", false);
  auto result = std::make_shared<lorafit::StepResult>();
  return PromiseWorker::Start(
      env,
      [model, batches, seed, checkpointing, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        auto params = lorafit::trainable_parameters(*model);
        if (params.empty()) throw lorafit::Error("E_ADAPTER", "nothing to train: no active adapter");
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
        *result = lorafit::accumulate_gradients(*model, batches, params, gen, checkpointing);
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("loss", result->loss);
        o.Set("tokens", static_cast<double>(result->tokens));
        o.Set("gradNorm", result->grad_norm);
        return o;
      },
      Value());
}

Napi::Value ModelWrap::EvalLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  auto batches = ToMicroBatches(env, info.Length() ? info[0] : env.Undefined());
  auto result = std::make_shared<std::pair<double, int64_t>>();
  return PromiseWorker::Start(
      env,
      [model, batches, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *result = lorafit::evaluate_loss(*model, batches);
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("sum", result->first);
        o.Set("tokens", static_cast<double>(result->second));
        return o;
      },
      Value());
}

}  // namespace lorafit_bindings
