#include "step_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdio>

namespace lorafit {

StepProfile::StepProfile(std::string path) : path_(std::move(path)) {
  namespace prof = torch::autograd::profiler;
  prof::prepareProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO, /*report_input_shapes=*/true), {torch::profiler::impl::ActivityType::CPU});
  prof::enableProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO, /*report_input_shapes=*/true), {torch::profiler::impl::ActivityType::CPU});
}

StepProfile::~StepProfile() {
  try {
    torch::autograd::profiler::disableProfiler()->save(path_);
  } catch (const std::exception& e) {
    // A destructor must not throw; the trace is a debugging aid, so say why it is missing.
    std::fprintf(stderr, "lorafit: could not write the step profile %s: %s\n", path_.c_str(), e.what());
  }
}

}  // namespace lorafit
