#include "ps/keep_alive.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace ctrps::ps {

Status SendKeepAlives(Transport* t) {
  for (int r = 0; r < t->size(); ++r) {
    for (Channel c : {Channel::kServer, Channel::kWorker})
      RETURN_IF_ERROR(t->Send(r, c, kTagKeepAlive, {}));
  }
  return Status::OK();
}

KeepAlive::KeepAlive(Transport* t, int64_t interval_ms) {
  const auto interval = std::chrono::milliseconds(std::max<int64_t>(1, interval_ms));
  thread_ = std::thread([this, t, interval] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      Status s = SendKeepAlives(t);
      if (!s.ok()) {
        spdlog::warn("rank {}: keep-alives stopped: {}", t->rank(), s.ToString());
        return;
      }
      cv_.wait_for(lock, interval, [this] { return stop_; });
    }
  });
}

KeepAlive::~KeepAlive() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t KeepAlive::IntervalFor(int64_t peer_timeout_ms) { return std::max<int64_t>(1, peer_timeout_ms / 4); }

}  // namespace ctrps::ps
