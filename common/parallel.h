// Runs fn(0..n-1) on up to `threads` threads (the caller's included) and
// returns the first error in index order. For coarse, independent tasks
// (one per shard file), not for inner loops.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/status.h"

namespace ctrps {

template <typename Fn>
Status ParallelFor(int n, int threads, Fn&& fn) {
  std::vector<Status> status(std::max(n, 0));
  std::atomic<int> next{0};
  auto worker = [&] {
    for (int i = next++; i < n; i = next++) status[i] = fn(i);
  };
  threads = std::max(1, std::min(threads, n));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  for (const Status& s : status) RETURN_IF_ERROR(s);
  return Status::OK();
}

// Threads a checkpoint or restore may use: every core (it is a pause).
inline int IoThreads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace ctrps
