#include "generation_wrap.h"

#include "convert.h"
#include "error.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::FunctionReference GenerationWrap::constructor_;

void GenerationWrap::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "NativeGeneration",
                                   {InstanceMethod("next", &GenerationWrap::Next), InstanceMethod("dispose", &GenerationWrap::Dispose)});
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
}

Napi::Object GenerationWrap::New(Napi::Env env, Napi::Value model_wrap, std::shared_ptr<lorafit::GenerationSession> session) {
  auto holder = Napi::External<std::shared_ptr<lorafit::GenerationSession>>::New(env, &session);
  return constructor_.New({model_wrap, holder});
}

GenerationWrap::GenerationWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GenerationWrap>(info) {
  if (info.Length() != 2 || !info[1].IsExternal()) ThrowCoded(info.Env(), "E_INPUT", "NativeGeneration comes from NativeModel.generate()");
  parent_ = std::make_unique<ModelChild>(info.Env(), info[0]);
  session_ = *info[1].As<Napi::External<std::shared_ptr<lorafit::GenerationSession>>>().Data();
}

// generate(ids, shape, mask | undefined, options) -> Promise<NativeGeneration> (the prompt is
// prefilled by the first next()). Every sampling field comes from lib/.
Napi::Value ModelWrap::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 4) ThrowCoded(env, "E_INPUT", "generate(ids, shape, mask, options)");
  auto shape = ToShapeVector(env, info[1], "shape");
  if (shape.size() != 2) ThrowCoded(env, "E_SHAPE", "shape must be [batch, seq]");
  at::Tensor ids = ToLongTensor(env, info[0], shape, "inputIds");
  at::Tensor mask = info[2].IsUndefined() ? at::Tensor() : ToLongTensor(env, info[2], shape, "attentionMask");
  Napi::Object o = ArgObject(info, 3, "generate(ids, shape, mask, options)");
  lorafit::SamplingOptions so;
  so.greedy = GetBool(o, "greedy");
  so.temperature = GetNumber(o, "temperature");
  so.top_k = static_cast<int64_t>(GetNumber(o, "topK"));
  so.top_p = GetNumber(o, "topP");
  so.repetition_penalty = GetNumber(o, "repetitionPenalty");
  so.seed = static_cast<uint64_t>(GetNumber(o, "seed"));
  so.eos_token_ids = ToLongVector(env, o.Get("eosTokenIds"), "eosTokenIds");
  if (Has(o, "adapters")) {
    so.use_model_adapters = false;
    so.adapters = GetStringList(o, "adapters");
  }
  auto holder = std::make_shared<std::shared_ptr<lorafit::GenerationSession>>();
  return PromiseWorker::Start(
      env,
      [model, ids, mask, so, holder] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *holder = std::make_shared<lorafit::GenerationSession>(*model, ids, mask, so);
      },
      // `this` outlives the worker: Value() is its keep-alive
      [holder, self = this](Napi::Env env) -> Napi::Value { return GenerationWrap::New(env, self->Value(), *holder); }, Value());
}

// next(n) -> Promise<{ tokens: number[][] ([steps][batch]), done }>
Napi::Value GenerationWrap::Next(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!session_) ThrowCoded(env, "E_DISPOSED", "this generation session has ended");
  auto model = parent_->model(env);
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowCoded(env, "E_INPUT", "next(n)");
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  auto session = session_;
  auto out = std::make_shared<std::vector<std::vector<int64_t>>>();
  return PromiseWorker::Start(
      env,
      [model, session, n, out] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *out = session->next(*model, n);
      },
      [session, out](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        Napi::Array steps = Napi::Array::New(env, out->size());
        for (size_t s = 0; s < out->size(); ++s) {
          Napi::Array row = Napi::Array::New(env, (*out)[s].size());
          for (size_t b = 0; b < (*out)[s].size(); ++b) row.Set(static_cast<uint32_t>(b), Napi::Number::New(env, static_cast<double>((*out)[s][b])));
          steps.Set(static_cast<uint32_t>(s), row);
        }
        r.Set("tokens", steps);
        r.Set("done", session->done());
        return r;
      },
      Value());
}

Napi::Value GenerationWrap::Dispose(const Napi::CallbackInfo& info) {
  session_.reset();  // an in-flight next() holds its own reference
  return info.Env().Undefined();
}

}  // namespace lorafit_bindings
