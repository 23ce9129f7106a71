#include "worker/nn/threading.h"

#include <atomic>

#include <Eigen/Core>

#include "common/check.h"

namespace ctrps::worker {
namespace {
std::atomic<int> g_threads{0};  // 0: not set, follow Eigen
}  // namespace

void SetNumThreads(int n) {
  CHECK_GE(n, 1);
  g_threads.store(n);
  Eigen::setNbThreads(n);
}

int NumThreads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : Eigen::nbThreads();
}

}  // namespace ctrps::worker
