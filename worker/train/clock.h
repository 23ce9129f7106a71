// The trainer's one clock, and seconds elapsed on it (trainer*.cc).
#pragma once

#include <chrono>

namespace ctrps::worker {

using Clock = std::chrono::steady_clock;

inline double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace ctrps::worker
