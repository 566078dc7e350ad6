// ModelWrap methods for generation: a session per request, decoded a few tokens per call so that
// JavaScript can stream, stop and cancel between calls.
#include <cstring>

#include "convert.h"
#include "error.h"
#include "model_wrap.h"
#include "worker.h"

namespace lorafit_bindings {

// generateStart(ids, shape, mask | undefined, options) -> Promise<sessionId>
Napi::Value ModelWrap::GenerateStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 4) ThrowCoded(env, "E_INPUT", "generateStart(ids, shape, mask, options)");
  auto shape = ToShapeVector(env, info[1], "shape");
  if (shape.size() != 2) ThrowCoded(env, "E_SHAPE", "shape must be [batch, seq]");
  at::Tensor ids = ToLongTensor(env, info[0], shape, "inputIds");
  at::Tensor mask = info[2].IsUndefined() ? at::Tensor() : ToLongTensor(env, info[2], shape, "attentionMask");
  Napi::Object o = info[3].As<Napi::Object>();
  lorafit::SamplingOptions so;
  so.greedy = OptBool(o, "greedy", true);
  so.temperature = OptNumber(o, "temperature", 1.0);
  so.top_k = static_cast<int64_t>(OptNumber(o, "topK", 0));
  so.top_p = OptNumber(o, "topP", 1.0);
  so.repetition_penalty = OptNumber(o, "repetitionPenalty", 1.0);
  so.seed = static_cast<uint64_t>(OptNumber(o, "seed", 0));
  if (o.Has("eosTokenIds") && o.Get("eosTokenIds").IsArray()) {
    Napi::Array a = o.Get("eosTokenIds").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) so.eos_token_ids.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  }
  if (o.Has("adapters") && o.Get("adapters").IsArray()) {
    so.use_model_adapters = false;
    Napi::Array a = o.Get("adapters").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) so.adapters.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  const int64_t id = next_session_++;
  auto holder = std::make_shared<std::shared_ptr<lorafit::GenerationSession>>();
  auto* self = this;
  return PromiseWorker::Start(
      env,
      [model, ids, mask, so, holder] {
        std::lock_guard<std::mutex> lock(model->mutex());
        *holder = std::make_shared<lorafit::GenerationSession>(*model, ids, mask, so);
      },
      [self, id, holder](Napi::Env env) -> Napi::Value {
        self->sessions_[id] = *holder;
        return Napi::Number::New(env, static_cast<double>(id));
      },
      Value());
}

// generateNext(sessionId, n) -> Promise<{ tokens: number[][] ([steps][batch]), done }>
Napi::Value ModelWrap::GenerateNext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  const int64_t id = info[0].As<Napi::Number>().Int64Value();
  const int64_t n = info.Length() > 1 ? info[1].As<Napi::Number>().Int64Value() : 1;
  auto it = sessions_.find(id);
  if (it == sessions_.end()) ThrowCoded(env, "E_INPUT", "unknown or finished generation session");
  auto session = it->second;
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

Napi::Value ModelWrap::GenerateEnd(const Napi::CallbackInfo& info) {
  sessions_.erase(info[0].As<Napi::Number>().Int64Value());
  return info.Env().Undefined();
}

}  // namespace lorafit_bindings
