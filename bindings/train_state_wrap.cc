#include "train_state_wrap.h"

#include "convert.h"
#include "error.h"
#include "micro_batches.h"
#include "process_group_wrap.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::FunctionReference TrainStateWrap::constructor_;

void TrainStateWrap::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "NativeTrainState",
                                   {InstanceMethod("step", &TrainStateWrap::Step),
                                    InstanceMethod("state", &TrainStateWrap::State),
                                    InstanceMethod("setState", &TrainStateWrap::SetState),
                                    InstanceMethod("dispose", &TrainStateWrap::Dispose)});
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
}

Napi::Object TrainStateWrap::New(Napi::Env env, Napi::Value model_wrap, std::shared_ptr<lorafit::TrainState> state) {
  auto holder = Napi::External<std::shared_ptr<lorafit::TrainState>>::New(env, &state);
  return constructor_.New({model_wrap, holder});  // the constructor copies the shared_ptr
}

TrainStateWrap::TrainStateWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainStateWrap>(info) {
  if (info.Length() != 2 || !info[1].IsExternal()) ThrowCoded(info.Env(), "E_INPUT", "NativeTrainState comes from NativeModel.createTrainState()");
  parent_ = std::make_unique<ModelChild>(info.Env(), info[0]);
  state_ = *info[1].As<Napi::External<std::shared_ptr<lorafit::TrainState>>>().Data();
}

std::shared_ptr<lorafit::TrainState> TrainStateWrap::state(Napi::Env env) const {
  if (!state_) ThrowCoded(env, "E_DISPOSED", "this training state was disposed");
  return state_;
}

// step(batches, { lr, maxGradNorm, dropoutSeed, gradientCheckpointing }, processGroup?)
//   -> Promise<{ loss, tokens, gradNorm, clipped, applied, nonFiniteWeight, step, reduceMs }>
// With a NativeProcessGroup, `batches` are this rank's share and the step is data-parallel.
Napi::Value TrainStateWrap::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = this->state(env);
  auto model = parent_->model(env);
  auto batches = ToMicroBatches(env, info.Length() ? info[0] : env.Undefined());
  Napi::Object o = ArgObject(info, 1, "step(batches, options)");
  lorafit::TrainStepOptions so;
  so.lr = GetNumber(o, "lr");
  so.max_grad_norm = GetNumber(o, "maxGradNorm");
  so.dropout_seed = static_cast<uint64_t>(GetNumber(o, "dropoutSeed"));
  so.gradient_checkpointing = GetBool(o, "gradientCheckpointing");
  std::shared_ptr<lorafit::ProcessGroup> group;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) group = ProcessGroupWrap::FromValue(env, info[2]);
  auto result = std::make_shared<lorafit::TrainStepResult>();
  return PromiseWorker::Start(
      env,
      [model, state, batches, so, group, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *result = state->step(*model, batches, so, group.get());
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("loss", result->loss);
        r.Set("tokens", static_cast<double>(result->tokens));
        r.Set("gradNorm", result->grad_norm);
        r.Set("clipped", result->clipped);
        r.Set("applied", result->applied);
        r.Set("nonFiniteWeight", result->non_finite_weight.empty() ? env.Null() : Napi::String::New(env, result->non_finite_weight));
        r.Set("step", static_cast<double>(result->step));
        r.Set("reduceMs", result->reduce_ms);
        return r;
      },
      Value());
}

// state() -> Promise<{ step, entries: [{ key: "<tensor key>.exp_avg" | ".exp_avg_sq", shape, data }] }>
Napi::Value TrainStateWrap::State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = this->state(env);
  auto model = parent_->model(env);
  auto out = std::make_shared<std::pair<int64_t, NamedTensors>>();
  return PromiseWorker::Start(
      env,
      [model, state, out] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *out = {state->steps(), state->entries(*model)};
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("step", static_cast<double>(out->first));
        r.Set("entries", FromNamedTensors(env, out->second));
        return r;
      },
      Value());
}

// setState(step, entries) -> Promise<void>
Napi::Value TrainStateWrap::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = this->state(env);
  auto model = parent_->model(env);
  if (info.Length() < 2 || !info[0].IsNumber()) ThrowCoded(env, "E_INPUT", "setState(step, entries)");
  const int64_t step = info[0].As<Napi::Number>().Int64Value();
  std::map<std::string, at::Tensor> values;
  for (auto& [key, t] : ToNamedTensors(env, info[1], "setState(entries)")) values[key] = t;
  return PromiseWorker::Start(
      env,
      [model, state, step, values] {
        std::lock_guard<std::mutex> lock(model->mutex());
        state->restore(*model, step, values);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

Napi::Value TrainStateWrap::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // an in-flight step holds its own reference
  return info.Env().Undefined();
}

}  // namespace lorafit_bindings
