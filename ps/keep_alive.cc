#include "ps/keep_alive.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace ctrps::ps {

Status SendKeepAlives(Transport* t, char kind) {
  for (int r = 0; r < t->size(); ++r) {
    for (Channel c : {Channel::kServer, Channel::kWorker})
      RETURN_IF_ERROR(t->Send(r, c, kTagKeepAlive, {kind}));
  }
  return Status::OK();
}

WaitTimer::WaitTimer(int source, const std::vector<int>* awaited, int64_t timeout_ms,
                     Clock::time_point now)
    : source_(source), awaited_(awaited), timeout_ms_(timeout_ms),
      timeout_(std::max<int64_t>(0, timeout_ms)) {
  deadline_ = now + timeout_;
  waiting_limit_ = now + kWaitingKeepAliveTimeouts * timeout_;
  next_send_ = now + std::chrono::milliseconds(KeepAlive::IntervalFor(timeout_ms));
}

bool WaitTimer::Counts(int from) const {
  if (source_ != kAnySource) return from == source_;
  return !awaited_ || std::find(awaited_->begin(), awaited_->end(), from) != awaited_->end();
}

void WaitTimer::OnKeepAlive(int from, char kind, Clock::time_point now) {
  if (!Counts(from)) return;
  if (kind == kKeepAliveWaiting) {
    // Alive, but waiting itself: it holds this wait only so long.
    waiting_seen_ = true;
    last_waiting_ = now;
    deadline_ = std::max(deadline_, std::min(now + timeout_, waiting_limit_));
    return;
  }
  busy_seen_ = true;
  last_busy_ = now;
  deadline_ = now + timeout_;
  waiting_limit_ = now + kWaitingKeepAliveTimeouts * timeout_;
}

bool WaitTimer::KeepAliveDue(Clock::time_point now, char* kind) {
  if (timeout_ms_ < 0 || now < next_send_) return false;
  next_send_ = now + std::chrono::milliseconds(KeepAlive::IntervalFor(timeout_ms_));
  // Waiting for a rank that is busy: pass its "busy" on, so the ranks
  // waiting for this one wait as long as it does.
  *kind = busy_seen_ && now - last_busy_ < timeout_ ? kKeepAliveBusy : kKeepAliveWaiting;
  return true;
}

Status WaitTimer::TimeoutStatus(Clock::time_point now) const {
  if (waiting_seen_ && now - last_waiting_ < timeout_) {
    return Status::Unavailable(
        std::string(kStuckWaitMessage) + " for another rank, for " +
        std::to_string(kWaitingKeepAliveTimeouts * timeout_ms_) +
        " ms: every rank is waiting for another (a stuck job, not a silent rank)");
  }
  return Status::Unavailable("no message after " + std::to_string(timeout_ms_) + " ms");
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
