// KeepAlive: while a rank works on its own for long (restoring a reader
// position deep inside a gzip file, writing or loading a large checkpoint),
// the ranks waiting for it must not mistake it for a silent peer. A
// KeepAlive scope sends keep-alives (kTagKeepAlive) to every rank from a
// thread of its own; each one restarts the timeout of a Recv waiting for
// this rank at its destination (ps/transport.h; a rank blocked in Recv
// sends its own, so waiting is not silence either). When the scope ends they stop, so a
// rank that then stays silent still ends the job within the peer timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "ps/transport.h"

namespace ctrps::ps {

// Sends one keep-alive to both inboxes of every rank, this one's included
// (in colocated mode its server thread also waits for its own worker).
// `kind`: kKeepAliveBusy, with how long ago the busy rank it vouches for
// was last heard from (0: this rank is the busy one), or kKeepAliveWaiting.
[[nodiscard]] Status SendKeepAlives(Transport* t, char kind = kKeepAliveBusy,
                                    uint32_t busy_age_ms = 0);

// The timeout of one Recv, as both transports keep it (ps/transport.h):
// which keep-alives restart it, when it ends, and when the waiting rank
// sends keep-alives of its own.
class WaitTimer {
 public:
  using Clock = std::chrono::steady_clock;
  // `self`: this rank (its own waiting keep-alives say nothing of a peer).
  WaitTimer(int self, int source, const std::vector<int>* awaited, int64_t timeout_ms,
            Clock::time_point now = Clock::now());
  // A keep-alive from rank `from` with its payload.
  void OnKeepAlive(int from, const char* payload, size_t bytes, Clock::time_point now);
  bool Expired(Clock::time_point now) const { return timeout_ms_ >= 0 && now >= deadline_; }
  Clock::time_point deadline() const { return deadline_; }
  // True when this rank's own keep-alives are due (every quarter timeout
  // from a quarter in), with what to send: kKeepAliveBusy and the age of
  // the busy signal this wait was kept by (a chain of waiting ranks passes
  // a busy rank's word on, growing older; so a loop of ranks waiting for
  // each other cannot keep itself alive with it), or kKeepAliveWaiting.
  bool KeepAliveDue(Clock::time_point now, char* kind, uint32_t* busy_age_ms);
  Clock::time_point next_keep_alive() const { return next_send_; }
  // The Unavailable of an expired wait.
  Status TimeoutStatus(Clock::time_point now) const;

 private:
  bool Counts(int from) const;
  int self_;
  int source_;
  const std::vector<int>* awaited_;
  int64_t timeout_ms_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_, waiting_limit_, next_send_;
  Clock::time_point busy_origin_{}, last_waiting_{};  // when the busy rank was last heard of
  bool busy_seen_ = false, waiting_seen_ = false;
};

class KeepAlive {
 public:
  // Sends at once, then every interval_ms (at least 1) until destroyed.
  // `t` (not owned) must outlive the scope; Send is called from the scope's
  // thread, so the transport must allow sends from several threads (both
  // transports do; MPI needs MPI_THREAD_MULTIPLE, which MpiRuntime asks
  // for). A failed send stops the keep-alives (the peers then time out and
  // say so); it is not an error of the work the scope covers.
  KeepAlive(Transport* t, int64_t interval_ms);
  ~KeepAlive();
  KeepAlive(const KeepAlive&) = delete;
  KeepAlive& operator=(const KeepAlive&) = delete;

  // The interval for a job whose peers time out after peer_timeout_ms (one
  // value for every rank: cluster.peer_timeout_ms): a quarter of it, so a
  // keep-alive or two may be late without a timeout.
  static int64_t IntervalFor(int64_t peer_timeout_ms);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ctrps::ps
