// [{ inputIds, labels, attentionMask?, segments?, shape: [B, T] }] -> native micro-batches, copied
// on the JS thread (JS memory may move once the call returns).
#pragma once
#include <napi.h>

#include <vector>

#include "train_step.h"

namespace lorafit_bindings {

std::vector<lorafit::MicroBatch> ToMicroBatches(Napi::Env env, Napi::Value v);

}  // namespace lorafit_bindings
