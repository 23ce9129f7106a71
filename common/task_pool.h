// TaskPool: a few persistent helper threads that run the independent parts
// of one batch call in parallel, e.g. the RocksDB store's one MultiGet per
// virtual shard touched, or a parameter server's work on each of its
// shards. Idle helpers sleep on a condition variable (they never spin), so
// a pool costs nothing while a process waits for the network or shares its
// cores with other processes.
//
// Run(n, fn) calls fn(i) for every i in [0, n) exactly once, on the calling
// thread and the helpers, and returns when all calls have returned. Tasks
// are claimed dynamically (no fixed assignment), so fn must write only to
// what task i owns; the returned Status is the first non-OK one in index
// order, never "whichever failed first", so results do not depend on
// scheduling.
//
// Thread safety: Run may be called from several threads at once (different
// tables); the helpers serve the calls in arrival order, and each caller
// also works on its own call, so a call never waits for another call's
// tasks. A pool of 1 thread has no helpers and runs everything inline.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"

namespace ctrps {

class TaskPool {
 public:
  // threads: the caller plus threads - 1 helpers (>= 1).
  explicit TaskPool(int threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

  using TaskFn = std::function<Status(size_t i)>;
  [[nodiscard]] Status Run(size_t n, const TaskFn& fn);

 private:
  struct Job;
  void HelperLoop();
  static void Work(Job* job);

  std::mutex mu_;
  std::condition_variable work_cv_;  // helpers wait for jobs
  std::condition_variable done_cv_;  // callers wait for their job's last task
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> helpers_;
};

}  // namespace ctrps
