#include "common/task_pool.h"

#include <atomic>

namespace ctrps {

struct TaskPool::Job {
  const TaskFn* fn = nullptr;
  size_t n = 0;
  std::atomic<size_t> next{0};  // next task to claim
  std::atomic<size_t> done{0};  // tasks finished
  std::vector<Status> status;   // per task
  TaskPool* pool = nullptr;
};

TaskPool::TaskPool(int threads) {
  for (int t = 1; t < threads; ++t) helpers_.emplace_back([this] { HelperLoop(); });
}

TaskPool::~TaskPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& h : helpers_) h.join();
}

// Claims and runs tasks of `job` until none is left; the thread finishing
// the last task wakes the caller.
void TaskPool::Work(Job* job) {
  for (size_t i = job->next++; i < job->n; i = job->next++) {
    job->status[i] = (*job->fn)(i);
    if (job->done.fetch_add(1) + 1 == job->n) {
      std::lock_guard lock(job->pool->mu_);  // pairs with the caller's wait
      job->pool->done_cv_.notify_all();
    }
  }
}

void TaskPool::HelperLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    std::shared_ptr<Job> job = jobs_.front();
    if (job->next.load() >= job->n) {  // every task claimed: retire it
      jobs_.pop_front();
      continue;
    }
    lock.unlock();
    Work(job.get());
    lock.lock();
  }
}

Status TaskPool::Run(size_t n, const TaskFn& fn) {
  if (helpers_.empty() || n <= 1) {
    Status first;
    for (size_t i = 0; i < n; ++i) {
      Status s = fn(i);
      if (first.ok() && !s.ok()) first = std::move(s);
    }
    return first;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->status.resize(n);
  job->pool = this;
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(job);
  }
  work_cv_.notify_all();
  Work(job.get());
  {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return job->done.load() == n; });
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
      if (*it == job) {
        jobs_.erase(it);
        break;
      }
  }
  for (Status& s : job->status)
    if (!s.ok()) return std::move(s);
  return Status::OK();
}

}  // namespace ctrps
