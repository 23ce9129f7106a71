#include "ps/keep_alive.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace ctrps::ps {

Status SendKeepAlives(Transport* t, char kind, uint32_t busy_age_ms) {
  std::vector<char> payload = {kind};
  if (kind == kKeepAliveBusy)
    for (int i = 0; i < 4; ++i) payload.push_back(static_cast<char>((busy_age_ms >> (8 * i)) & 0xff));
  for (int r = 0; r < t->size(); ++r) {
    for (Channel c : {Channel::kServer, Channel::kWorker})
      RETURN_IF_ERROR(t->Send(r, c, kTagKeepAlive, payload));
  }
  return Status::OK();
}

WaitTimer::WaitTimer(int self, int source, const std::vector<int>* awaited, int64_t timeout_ms,
                     Clock::time_point now)
    : self_(self), source_(source), awaited_(awaited), timeout_ms_(timeout_ms),
      timeout_(std::max<int64_t>(0, timeout_ms)) {
  deadline_ = now + timeout_;
  waiting_limit_ = now + kWaitingKeepAliveTimeouts * timeout_;
  next_send_ = now + std::chrono::milliseconds(KeepAlive::IntervalFor(timeout_ms));
}

bool WaitTimer::Counts(int from) const {
  if (source_ != kAnySource) return from == source_;
  return !awaited_ || std::find(awaited_->begin(), awaited_->end(), from) != awaited_->end();
}

void WaitTimer::OnKeepAlive(int from, const char* payload, size_t bytes,
                            Clock::time_point now) {
  if (!Counts(from)) return;
  const char kind = bytes > 0 ? payload[0] : kKeepAliveBusy;  // empty: busy (older builds)
  uint32_t age_ms = 0;
  if (kind == kKeepAliveBusy && bytes >= 5)
    for (int i = 0; i < 4; ++i) age_ms |= uint32_t{static_cast<unsigned char>(payload[1 + i])} << (8 * i);
  // This rank's own waits, and its own relays of a busy rank's word, tell
  // nothing about a peer (another thread of it that is busy does).
  if (from == self_ && (kind != kKeepAliveBusy || age_ms > 0)) return;
  const Clock::time_point origin = now - std::chrono::milliseconds(age_ms);
  if (kind != kKeepAliveBusy || now - origin >= timeout_) {
    // Alive, but waiting itself (or vouching for a busy rank not heard of
    // for a whole timeout): it holds this wait only so long.
    waiting_seen_ = true;
    last_waiting_ = now;
    deadline_ = std::max(deadline_, std::min(now + timeout_, waiting_limit_));
    return;
  }
  if (!busy_seen_ || origin > busy_origin_) busy_origin_ = origin;
  busy_seen_ = true;
  deadline_ = std::max(deadline_, now + timeout_);
  waiting_limit_ = std::max(waiting_limit_, now + kWaitingKeepAliveTimeouts * timeout_);
}

bool WaitTimer::KeepAliveDue(Clock::time_point now, char* kind, uint32_t* busy_age_ms) {
  if (timeout_ms_ < 0 || now < next_send_) return false;
  next_send_ = now + std::chrono::milliseconds(KeepAlive::IntervalFor(timeout_ms_));
  // Waiting for a rank that is busy: pass its word on, with its age, so
  // the ranks waiting for this one wait as long as it does.
  *busy_age_ms = 0;
  if (busy_seen_ && now - busy_origin_ < timeout_) {
    *kind = kKeepAliveBusy;
    *busy_age_ms = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - busy_origin_).count());
    if (*busy_age_ms == 0) *busy_age_ms = 1;  // a relay is never the busy rank itself
  } else {
    *kind = kKeepAliveWaiting;
  }
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
