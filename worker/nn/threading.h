// Compute threads of the model code: Eigen's products and the element-wise
// passes (OpenMP). Process-wide, like Eigen's own setting; set it once at
// start-up, not while a model is running. Until SetNumThreads is called the
// count is Eigen's default (OMP_NUM_THREADS, else every core).
#pragma once

namespace ctrps::worker {

// n >= 1. Sets Eigen::setNbThreads(n) and the thread count of this module's
// OpenMP loops.
void SetNumThreads(int n);
int NumThreads();

}  // namespace ctrps::worker

// ---- Internal helper for this module's element-wise passes. ----

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace ctrps::worker {

// Calls body(begin, end) on NumThreads() contiguous slices of [0, n), in
// parallel; runs inline when n < 2 * min_per_thread or one thread is set.
template <typename Body>
void ParallelFor(int64_t n, int64_t min_per_thread, Body&& body) {
  const int64_t max_threads = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
  const int threads = static_cast<int>(std::min<int64_t>(NumThreads(), max_threads));
  if (threads <= 1 || omp_in_parallel()) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (end > begin) body(begin, end);
  }
}

}  // namespace ctrps::worker
