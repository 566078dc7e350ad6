// ModelWrap methods for the optimizer: one update per call, and its state for checkpoints.
#include <algorithm>
#include <cstring>

#include "convert.h"
#include "error.h"
#include "lora_adapter.h"
#include "model_wrap.h"
#include "optimizer.h"
#include "safetensors.h"
#include "worker.h"

namespace lorafit_bindings {

namespace {
// The tensors an optimizer named `name` updates: an adapter's, or every base weight for kFullModel.
constexpr const char* kFullModel = "__full__";

std::vector<std::pair<std::string, at::Tensor>> NamedTrainables(lorafit::CausalLM& m, const std::string& name) {
  if (name == kFullModel) return m.named_parameters();
  return lorafit::adapter_tensors(m, name);
}

std::vector<at::Tensor> AdapterParams(lorafit::CausalLM& m, const std::string& name) {
  std::vector<at::Tensor> out;
  for (auto& [key, t] : NamedTrainables(m, name)) out.push_back(t);
  return out;
}
}  // namespace

Napi::Value ModelWrap::OptimizerStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) ThrowCoded(env, "E_INPUT", "optimizerStep(name, options)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  lorafit::OptimizerConfig config;
  config.kind = OptString(o, "kind", "adamw");
  config.beta1 = OptNumber(o, "beta1", 0.9);
  config.beta2 = OptNumber(o, "beta2", 0.999);
  config.eps = OptNumber(o, "eps", 1e-8);
  config.weight_decay = OptNumber(o, "weightDecay", 0);
  config.momentum = OptNumber(o, "momentum", 0);
  const double lr = OptNumber(o, "lr", 0);
  const double max_norm = OptNumber(o, "maxGradNorm", 0);
  auto result = std::make_shared<std::pair<lorafit::StepStats, int64_t>>();
  return PromiseWorker::Start(
      env,
      [model, name, config, lr, max_norm, result] {
        std::lock_guard<std::mutex> lock(model->mutex());
        auto params = AdapterParams(*model, name);
        auto& state = model->optimizer_states()[name];
        result->first = lorafit::optimizer_step(params, state, config, lr, max_norm);
        result->second = state.step;
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("gradNorm", result->first.grad_norm);
        r.Set("clipped", result->first.clipped);
        r.Set("step", static_cast<double>(result->second));
        return r;
      },
      Value());
}

// -> { step, entries: [{ key: "<tensor key>.exp_avg" | ".exp_avg_sq", shape, data }] }
Napi::Value ModelWrap::OptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = this->model(env);
  if (info.Length() < 1 || !info[0].IsString()) ThrowCoded(env, "E_INPUT", "optimizerState(name)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  struct Out {
    int64_t step = 0;
    std::vector<std::pair<std::string, at::Tensor>> entries;
  };
  auto out = std::make_shared<Out>();
  return PromiseWorker::Start(
      env,
      [model, name, out] {
        std::lock_guard<std::mutex> lock(model->mutex());
        auto keys = NamedTrainables(*model, name);
        auto it = model->optimizer_states().find(name);
        if (it == model->optimizer_states().end()) return;
        out->step = it->second.step;
        for (size_t i = 0; i < keys.size() && i < it->second.exp_avg.size(); ++i) {
          out->entries.emplace_back(keys[i].first + ".exp_avg", it->second.exp_avg[i].to(at::kCPU, at::kFloat).contiguous());
          if (i < it->second.exp_avg_sq.size())
            out->entries.emplace_back(keys[i].first + ".exp_avg_sq", it->second.exp_avg_sq[i].to(at::kCPU, at::kFloat).contiguous());
        }
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("step", static_cast<double>(out->step));
        Napi::Array a = Napi::Array::New(env, out->entries.size());
        for (size_t i = 0; i < out->entries.size(); ++i) {
          Napi::Object e = Napi::Object::New(env);
          e.Set("key", out->entries[i].first);
          e.Set("shape", ToShape(env, out->entries[i].second.sizes()));
          e.Set("data", ToFloat32Array(env, out->entries[i].second));
          a.Set(static_cast<uint32_t>(i), e);
        }
        r.Set("entries", a);
        return r;
      },
      Value());
}

Napi::Value ModelWrap::SetOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsArray())
    ThrowCoded(env, "E_INPUT", "setOptimizerState(name, step, entries)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int64_t step = info[1].As<Napi::Number>().Int64Value();
  Napi::Array a = info[2].As<Napi::Array>();
  std::map<std::string, at::Tensor> values;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object e = a.Get(i).As<Napi::Object>();
    const std::string key = e.Get("key").As<Napi::String>().Utf8Value();
    auto shape = ToShapeVector(env, e.Get("shape"), key);
    auto data = e.Get("data").As<Napi::Float32Array>();
    at::Tensor t = at::empty(shape, at::kFloat);
    if (static_cast<int64_t>(data.ElementLength()) != t.numel()) ThrowCoded(env, "E_SHAPE", key + ": wrong number of values");
    std::memcpy(t.data_ptr<float>(), data.Data(), t.numel() * sizeof(float));
    values[key] = t;
  }
  return RunLocked(env, [name, step, values](lorafit::CausalLM& m) {
    lorafit::OptimizerState state;
    state.step = step;
    const bool has_sq = std::any_of(values.begin(), values.end(), [](auto& kv) { return kv.first.size() > 11 && kv.first.compare(kv.first.size() - 11, 11, ".exp_avg_sq") == 0; });
    for (auto& [key, t] : NamedTrainables(m, name)) {
      auto find = [&](const std::string& k) {
        auto it = values.find(k);
        if (it == values.end()) throw lorafit::Error("E_CHECKPOINT", "optimizer state lacks '" + k + "'");
        if (it->second.sizes() != t.sizes()) throw lorafit::Error("E_SHAPE", "optimizer state '" + k + "' has shape " + lorafit::shape_string(it->second.sizes()));
        return it->second.to(t.device());
      };
      state.exp_avg.push_back(find(key + ".exp_avg"));
      if (has_sq) state.exp_avg_sq.push_back(find(key + ".exp_avg_sq"));
    }
    m.optimizer_states()[name] = std::move(state);
  });
}

}  // namespace lorafit_bindings
