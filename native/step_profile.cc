#include "step_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdio>
#include <set>

namespace lorafit {

StepProfile::StepProfile(std::string path) : path_(std::move(path)) {
  namespace prof = torch::autograd::profiler;
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO, /*report_input_shapes=*/true);
  const std::set<torch::profiler::impl::ActivityType> activities{torch::profiler::impl::ActivityType::CPU};
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
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
