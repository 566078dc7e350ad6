#include "process_group_wrap.h"

#include "convert.h"
#include "worker.h"

namespace lorafit_bindings {

Napi::FunctionReference ProcessGroupWrap::constructor_;

void ProcessGroupWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeProcessGroup",
                                   {InstanceMethod("allReduce", &ProcessGroupWrap::AllReduce),
                                    InstanceMethod("barrier", &ProcessGroupWrap::Barrier),
                                    InstanceMethod("collectiveMs", &ProcessGroupWrap::CollectiveMs),
                                    InstanceMethod("dispose", &ProcessGroupWrap::Dispose)});
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
  exports.Set("createProcessGroup", Napi::Function::New(env, &ProcessGroupWrap::Create));
  exports.Set("distributedAvailable", Napi::Boolean::New(env, lorafit::distributed_available()));
}

ProcessGroupWrap::ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) ThrowCoded(info.Env(), "E_INPUT", "NativeProcessGroup comes from createProcessGroup()");
  group_ = *info[0].As<Napi::External<std::shared_ptr<lorafit::ProcessGroup>>>().Data();
}

std::shared_ptr<lorafit::ProcessGroup> ProcessGroupWrap::group(Napi::Env env) const {
  if (!group_) ThrowCoded(env, "E_DISPOSED", "this process group was disposed");
  return group_;
}

std::shared_ptr<lorafit::ProcessGroup> ProcessGroupWrap::FromValue(Napi::Env env, Napi::Value value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(constructor_.Value()))
    ThrowCoded(env, "E_INPUT", "expected a NativeProcessGroup (from createProcessGroup())");
  return Unwrap(value.As<Napi::Object>())->group(env);
}

// createProcessGroup({ backend, rank, worldSize, localRank, masterAddr, masterPort, timeoutMs, bucketBytes })
//   -> Promise<NativeProcessGroup>, once every rank has joined.
Napi::Value ProcessGroupWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ArgObject(info, 0, "createProcessGroup(options)");
  lorafit::ProcessGroupOptions po;
  po.backend = GetString(o, "backend");
  po.rank = static_cast<int>(GetNumber(o, "rank"));
  po.world_size = static_cast<int>(GetNumber(o, "worldSize"));
  po.local_rank = static_cast<int>(GetNumber(o, "localRank"));
  po.master_addr = GetString(o, "masterAddr");
  po.master_port = static_cast<int>(GetNumber(o, "masterPort"));
  po.timeout_ms = static_cast<int64_t>(GetNumber(o, "timeoutMs"));
  po.bucket_bytes = static_cast<int64_t>(GetNumber(o, "bucketBytes"));
  auto out = std::make_shared<std::shared_ptr<lorafit::ProcessGroup>>();
  return PromiseWorker::Start(
      env, [po, out] { *out = std::make_shared<lorafit::ProcessGroup>(po); },
      [out](Napi::Env env) -> Napi::Value {
        auto holder = Napi::External<std::shared_ptr<lorafit::ProcessGroup>>::New(env, out.get());
        return constructor_.New({holder});  // the constructor copies the shared_ptr
      });
}

// allReduce(Float64Array) -> Promise<Float64Array>: the element-wise sum over all ranks.
Napi::Value ProcessGroupWrap::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowCoded(env, "E_INPUT", "allReduce(values: Float64Array)");
  auto in = info[0].As<Napi::Float64Array>();
  auto values = std::make_shared<std::vector<double>>(in.Data(), in.Data() + in.ElementLength());
  return PromiseWorker::Start(
      env, [group, values] { group->all_reduce_sum(*values); },
      [values](Napi::Env env) -> Napi::Value {
        auto out = Napi::Float64Array::New(env, values->size());
        std::copy(values->begin(), values->end(), out.Data());
        return out;
      },
      Value());
}

// barrier() -> Promise<void>: resolves when every rank has reached it.
Napi::Value ProcessGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto group = this->group(env);
  return PromiseWorker::Start(env, [group] { group->barrier(); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, Value());
}

// collectiveMs() -> number: milliseconds this rank has spent in collectives.
Napi::Value ProcessGroupWrap::CollectiveMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), group(info.Env())->collective_ms());
}

Napi::Value ProcessGroupWrap::Dispose(const Napi::CallbackInfo& info) {
  group_.reset();  // an in-flight collective holds its own reference
  return info.Env().Undefined();
}

}  // namespace lorafit_bindings
