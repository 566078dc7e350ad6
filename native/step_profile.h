#pragma once
// Debugging aid: records the ops of one training step with libtorch's (Kineto) profiler, input
// shapes included, and writes them as a chrome trace when it goes out of scope.
// bench/profile-summary.py sums such a trace by op (--shapes: by op and input shapes).
#include <string>

namespace lorafit {

class StepProfile {
 public:
  explicit StepProfile(std::string path);
  ~StepProfile();
  StepProfile(const StepProfile&) = delete;
  StepProfile& operator=(const StepProfile&) = delete;

 private:
  std::string path_;
};

}  // namespace lorafit
