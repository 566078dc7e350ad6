// Module entry: registers the native classes and process-wide functions.
#include <napi.h>

#include "gguf.h"
#include "hf_config.h"
#include "adapter_wrap.h"
#include "generation_wrap.h"
#include "model_wrap.h"
#include "train_state_wrap.h"
#include "process_group_wrap.h"
#include "runtime.h"
#include "convert.h"
#include "worker.h"

namespace lorafit_bindings {

namespace {
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  lorafit::set_threads(n);
  return Napi::Number::New(info.Env(), lorafit::get_threads());
}
Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), lorafit::get_threads()); }
Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  bool ok = false;
  GuardNative(info.Env(), [&] { ok = lorafit::cuda_available(); });
  return Napi::Boolean::New(info.Env(), ok);
}
// Benchmarks only: benchMatmul(n, dtype, reps, device?) -> Promise<number[]> (seconds of each run).
Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber())
    ThrowCoded(env, "E_INPUT", "benchMatmul(n, dtype, reps, device)");
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  const std::string dtype = info[1].As<Napi::String>().Utf8Value();
  const int reps = info[2].As<Napi::Number>().Int32Value();
  const std::string device = ArgString(info, 3, "benchMatmul(n, dtype, reps, device, lorafitPath)");
  const bool lorafit_path = info.Length() > 4 && info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  auto out = std::make_shared<std::vector<double>>();
  return PromiseWorker::Start(
      env,
      [n, dtype, reps, device, lorafit_path, out] {
        *out = lorafit::time_matmul(n, lorafit::parse_dtype(dtype), lorafit::parse_device(device), reps, lorafit_path);
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*out)[i]));
        return a;
      });
}
// workerThreads() -> Promise<{ intraOp, blas, parallel }>: the thread counts a native job sees on the
// libuv pool thread it runs on (what configureProcess({ threads }) promises every job); parallel:
// how many threads ran a parallel loop of lorafit's own kernels there.
Napi::Value WorkerThreads(const Napi::CallbackInfo& info) {
  auto out = std::make_shared<lorafit::ThreadCounts>();
  auto parallel = std::make_shared<int>(0);
  return PromiseWorker::Start(
      info.Env(),
      [out, parallel] {
        *out = lorafit::this_thread_threads();
        *parallel = lorafit::parallel_team_size();
      },
      [out, parallel](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("intraOp", out->intra_op);
        o.Set("blas", out->blas);
        o.Set("parallel", *parallel);
        return o;
      });
}
// hfConfig(configJsonText, where) -> string: a config.json as native/hf_config.cc reads it (the
// transformers class defaults filled in, rope_parameters or rope_scaling), in Model.config's
// shape. The one source of architecture defaults; lib/export uses it too.
Napi::Value HfConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string text = ArgString(info, 0, "hfConfig(text, where)");
  const std::string where = ArgString(info, 1, "hfConfig(text, where)");
  std::string out;
  GuardNative(env, [&] { out = lorafit::config_to_json(lorafit::parse_config(text, where)); });
  return Napi::String::New(env, out);
}

// configureProcess({ threads?, mallocArenaMax?, mallocTrim? }) -> processSettings(): the process-wide
// settings (lib/model/process-settings.ts validates and documents them).
Napi::Value ProcessSettings(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("threads", lorafit::get_threads());
  o.Set("mallocArenaMax", lorafit::allocator_arena_max());
  o.Set("mallocTrim", lorafit::allocator_trim());
  return o;
}

Napi::Value ConfigureProcess(const Napi::CallbackInfo& info) {
  Napi::Object o = ArgObject(info, 0, "configureProcess(settings)");
  if (Has(o, "threads")) lorafit::set_threads(static_cast<int>(GetNumber(o, "threads")));
  const int arena = Has(o, "mallocArenaMax") ? static_cast<int>(GetNumber(o, "mallocArenaMax")) : 0;
  const bool trim = Has(o, "mallocTrim") ? GetBool(o, "mallocTrim") : lorafit::allocator_trim();
  lorafit::set_allocator(arena, trim);
  return ProcessSettings(info);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lorafit::configure_allocator();
  // Default to all cores (libtorch's own default here is 1 thread); lib/ may override.
  lorafit::set_threads(0);
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
  exports.Set("workerThreads", Napi::Function::New(env, WorkerThreads));
  exports.Set("hfConfig", Napi::Function::New(env, HfConfig));
  exports.Set("configureProcess", Napi::Function::New(env, ConfigureProcess));
  exports.Set("processSettings", Napi::Function::New(env, ProcessSettings));
  exports.Set("torchVersion", Napi::String::New(env, lorafit::torch_version()));
  ModelWrap::Init(env, exports);
  AdapterWrap::Init(env);
  TrainStateWrap::Init(env);
  GenerationWrap::Init(env);
  ProcessGroupWrap::Init(env, exports);
  InitGguf(env, exports);
  return exports;
}

NODE_API_MODULE(lorafit, Init)

}  // namespace lorafit_bindings
