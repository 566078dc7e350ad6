#include "micro_batches.h"

#include "convert.h"
#include "worker.h"

namespace lorafit_bindings {

std::vector<lorafit::MicroBatch> ToMicroBatches(Napi::Env env, Napi::Value v) {
  if (!v.IsArray()) ThrowCoded(env, "E_INPUT", "batches must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<lorafit::MicroBatch> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const std::string where = "batches[" + std::to_string(i) + "]";
    if (!a.Get(i).IsObject()) ThrowCoded(env, "E_INPUT", where + " must be an object");
    Napi::Object o = a.Get(i).As<Napi::Object>();
    auto shape = ToShapeVector(env, o.Get("shape"), where + ".shape");
    if (shape.size() != 2) ThrowCoded(env, "E_SHAPE", where + ".shape must be [batch, seq]");
    lorafit::MicroBatch mb;
    mb.input_ids = ToLongTensor(env, o.Get("inputIds"), shape, where + ".inputIds");
    mb.labels = ToLongTensor(env, o.Get("labels"), shape, where + ".labels");
    if (Has(o, "attentionMask")) mb.attention_mask = ToLongTensor(env, o.Get("attentionMask"), shape, where + ".attentionMask");
    if (Has(o, "segments")) mb.segments = ToLongVector(env, o.Get("segments"), where + ".segments");
    out.push_back(std::move(mb));
  }
  return out;
}

}  // namespace lorafit_bindings
