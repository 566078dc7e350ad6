// ModelWrap methods for adapters and training: attaching adapters (-> AdapterWrap), the active
// set, training states (-> TrainStateWrap), a loss-and-gradient pass and evaluation. Conversion
// and scheduling only; the maths is in native/lora_adapter.cc, train_step.cc and train_state.cc.
#include "adapter_wrap.h"
#include "convert.h"
#include "error.h"
#include "lora_adapter.h"
#include "micro_batches.h"
#include "model_wrap.h"
#include "train_state_wrap.h"
#include "worker.h"

namespace lorafit_bindings {

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

// addAdapter({ name, rank, alpha, dropout, rslora, init, seed, targets, useDora, modulesToSave }) -> Promise<NativeAdapter>
Napi::Value ModelWrap::AddAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  Napi::Object o = ArgObject(info, 0, "addAdapter(spec)");
  lorafit::LoraSpec spec;
  spec.name = GetString(o, "name");
  spec.rank = static_cast<int64_t>(GetNumber(o, "rank"));
  spec.alpha = GetNumber(o, "alpha");
  spec.dropout = GetNumber(o, "dropout");
  spec.rslora = GetBool(o, "rslora");
  spec.init = GetString(o, "init");
  spec.seed = static_cast<uint64_t>(GetNumber(o, "seed"));
  spec.targets = GetStringList(o, "targets");
  spec.use_dora = GetBool(o, "useDora");
  spec.modules_to_save = GetStringList(o, "modulesToSave");
  return PromiseWorker::Start(
      env,
      [model, spec] {
        std::lock_guard<std::mutex> lock(model->mutex());
        lorafit::add_adapter(*model, spec);
      },
      // `this` outlives the worker: Value() is its keep-alive
      [self = this, name = spec.name](Napi::Env env) -> Napi::Value { return AdapterWrap::New(env, self->Value(), name); }, Value());
}

Napi::Value ModelWrap::SetFullTraining(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) ThrowCoded(info.Env(), "E_INPUT", "setFullTraining(on: boolean)");
  const bool on = info[0].As<Napi::Boolean>().Value();
  return RunLocked(info.Env(), [on](lorafit::CausalLM& m) { m.set_full_training(on); });
}

Napi::Value ModelWrap::LoadWeights(const Napi::CallbackInfo& info) {
  const std::string dir = ArgString(info, 0, "loadWeights(dir)");
  return RunLocked(info.Env(), [dir](lorafit::CausalLM& m) { m.load_weights(dir); });
}

// setActiveAdapters(adapters: NativeAdapter[]) -> Promise<void>
Napi::Value ModelWrap::SetActiveAdapters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowCoded(env, "E_INPUT", "setActiveAdapters(adapters)");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> names;
  for (uint32_t i = 0; i < a.Length(); ++i) names.push_back(AdapterWrap::FromValue(env, a.Get(i))->name());
  return RunLocked(env, [names](lorafit::CausalLM& m) {
    for (const auto& n : names)
      if (!lorafit::has_adapter(m, n)) throw lorafit::Error("E_ADAPTER", "no adapter named '" + n + "'");
    m.active_adapters() = names;
  });
}

// createTrainState(adapter: NativeAdapter | null, { kind, beta1, beta2, eps, weightDecay, momentum })
//   -> NativeTrainState (null: every base weight, for full-parameter training). Synchronous: no
//   tensor exists before the first step.
Napi::Value ModelWrap::CreateTrainState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  this->model(env);  // E_DISPOSED
  std::string target;
  if (info.Length() < 1) ThrowCoded(env, "E_INPUT", "createTrainState(adapter | null, optimizer)");
  if (!info[0].IsNull()) target = AdapterWrap::FromValue(env, info[0])->name();
  Napi::Object o = ArgObject(info, 1, "createTrainState(adapter | null, optimizer)");
  lorafit::OptimizerConfig config;
  config.kind = GetString(o, "kind");
  config.beta1 = GetNumber(o, "beta1");
  config.beta2 = GetNumber(o, "beta2");
  config.eps = GetNumber(o, "eps");
  config.weight_decay = GetNumber(o, "weightDecay");
  config.momentum = GetNumber(o, "momentum");
  config.lora_b_lr_ratio = GetNumber(o, "loraBLrRatio");
  std::shared_ptr<lorafit::TrainState> state;
  GuardNative(env, [&] { state = std::make_shared<lorafit::TrainState>(target, config); });
  return TrainStateWrap::New(env, Value(), state);
}

// lossAndGrad(batches, { dropoutSeed, gradientCheckpointing }) -> Promise<{ loss, tokens, gradNorm }>:
// gradients on the active adapters' tensors (or every weight in full-training mode), no update.
Napi::Value ModelWrap::LossAndGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  auto batches = ToMicroBatches(env, info.Length() ? info[0] : env.Undefined());
  Napi::Object opts = ArgObject(info, 1, "lossAndGrad(batches, options)");
  const uint64_t seed = static_cast<uint64_t>(GetNumber(opts, "dropoutSeed"));
  const bool checkpointing = GetBool(opts, "gradientCheckpointing");
  auto result = std::make_shared<lorafit::StepResult>();
  return PromiseWorker::Start(
      env,
      [model, batches, seed, checkpointing, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *result = lorafit::loss_and_grad(*model, batches, seed, checkpointing);
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
