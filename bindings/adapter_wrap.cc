#include "adapter_wrap.h"

#include "convert.h"
#include "error.h"
#include "lora_adapter.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::FunctionReference AdapterWrap::constructor_;

void AdapterWrap::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "NativeAdapter",
                                   {InstanceAccessor("name", &AdapterWrap::Name, nullptr),
                                    InstanceMethod("state", &AdapterWrap::State),
                                    InstanceMethod("setState", &AdapterWrap::SetState),
                                    InstanceMethod("merge", &AdapterWrap::Merge),
                                    InstanceMethod("combineFrom", &AdapterWrap::CombineFrom),
                                    InstanceMethod("delete", &AdapterWrap::Delete)});
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
}

Napi::Object AdapterWrap::New(Napi::Env env, Napi::Value model_wrap, const std::string& name) {
  return constructor_.New({model_wrap, Napi::String::New(env, name)});
}

AdapterWrap* AdapterWrap::FromValue(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(constructor_.Value())) ThrowCoded(env, "E_INPUT", "expected a NativeAdapter");
  return Napi::ObjectWrap<AdapterWrap>::Unwrap(v.As<Napi::Object>());
}

AdapterWrap::AdapterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AdapterWrap>(info) {
  if (info.Length() != 2 || !info[1].IsString()) ThrowCoded(info.Env(), "E_INPUT", "NativeAdapter comes from NativeModel.addAdapter()");
  parent_ = std::make_unique<ModelChild>(info.Env(), info[0]);
  name_ = info[1].As<Napi::String>().Utf8Value();
}

std::shared_ptr<lorafit::CausalLM> AdapterWrap::live_model(Napi::Env env) const {
  if (deleted_) ThrowCoded(env, "E_DISPOSED", "adapter '" + name_ + "' was deleted");
  return parent_->model(env);
}

Napi::Value AdapterWrap::Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

// state(grads: boolean) -> Promise<[{ key, shape, data }]> (keys without PEFT's base_model.model. prefix)
Napi::Value AdapterWrap::State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live_model(env);
  if (info.Length() < 1 || !info[0].IsBoolean()) ThrowCoded(env, "E_INPUT", "state(grads: boolean)");
  const bool grads = info[0].As<Napi::Boolean>().Value();
  auto result = std::make_shared<NamedTensors>();
  return PromiseWorker::Start(
      env,
      [model, name = name_, grads, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *result = lorafit::adapter_state(*model, name, grads);
      },
      [result](Napi::Env env) -> Napi::Value { return FromNamedTensors(env, *result); }, Value());
}

Napi::Value AdapterWrap::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live_model(env);
  auto entries = ToNamedTensors(env, info.Length() ? info[0] : env.Undefined(), "setState(entries)");
  return PromiseWorker::Start(
      env,
      [model, name = name_, entries] {
        std::lock_guard<std::mutex> lock(model->mutex());
        lorafit::set_adapter_state(*model, name, entries);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

// merge('merge' | 'unmerge' | 'unload'); after 'unload' the adapter is gone and the wrap deleted.
Napi::Value AdapterWrap::Merge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live_model(env);
  const std::string mode = ArgString(info, 0, "merge(mode)");
  if (mode != "merge" && mode != "unmerge" && mode != "unload") ThrowCoded(env, "E_INPUT", "merge mode must be merge, unmerge or unload");
  return PromiseWorker::Start(
      env,
      [model, name = name_, mode] {
        std::lock_guard<std::mutex> lock(model->mutex());
        if (mode == "merge") lorafit::merge_adapter(*model, name);
        else if (mode == "unmerge") lorafit::unmerge_adapter(*model, name);
        else lorafit::merge_and_unload(*model, name);
      },
      // a refused unload (non-finite delta) leaves the adapter attached; only a done one deletes it
      [self = this, mode](Napi::Env env) -> Napi::Value {
        if (mode == "unload") self->deleted_ = true;
        return env.Undefined();
      },
      Value());
}

// combineFrom([{ adapter: NativeAdapter, weight }], type: 'linear' | 'cat'): fills this adapter.
Napi::Value AdapterWrap::CombineFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live_model(env);
  if (info.Length() < 2 || !info[0].IsArray()) ThrowCoded(env, "E_INPUT", "combineFrom(parts, type)");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<lorafit::CombinePart> parts;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) ThrowCoded(env, "E_INPUT", "combineFrom: parts[" + std::to_string(i) + "] must be an object");
    Napi::Object p = a.Get(i).As<Napi::Object>();
    AdapterWrap* other = FromValue(env, p.Get("adapter"));
    other->live_model(env);  // E_DISPOSED if that one was deleted
    parts.push_back({other->name(), GetNumber(p, "weight")});
  }
  const std::string type = ArgString(info, 1, "combineFrom(parts, type)");
  return PromiseWorker::Start(
      env,
      [model, name = name_, parts, type] {
        std::lock_guard<std::mutex> lock(model->mutex());
        lorafit::combine_adapters(*model, name, parts, type);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

// delete() -> Promise<void>: removes the adapter from the model (once; later calls resolve at once).
Napi::Value AdapterWrap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto resolved = [&] {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  };
  if (deleted_) return resolved();
  deleted_ = true;
  std::shared_ptr<lorafit::CausalLM> model;
  try {
    model = parent_->model(env);
  } catch (const Napi::Error&) {
    return resolved();  // the model was disposed first: the adapter went with it
  }
  return PromiseWorker::Start(
      env,
      [model, name = name_] {
        std::lock_guard<std::mutex> lock(model->mutex());
        if (lorafit::has_adapter(*model, name)) lorafit::delete_adapter(*model, name);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

}  // namespace lorafit_bindings
