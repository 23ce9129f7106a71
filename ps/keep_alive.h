// KeepAlive: while a rank works on its own for long (restoring a reader
// position deep inside a gzip file, writing or loading a large checkpoint),
// the ranks waiting for it must not mistake it for a silent peer. A
// KeepAlive scope sends keep-alives (kTagKeepAlive) to every rank from a
// thread of its own; each one restarts the timeout of a Recv waiting
// at its destination (ps/transport.h). When the scope ends they stop, so a
// rank that then stays silent still ends the job within the peer timeout.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "ps/transport.h"

namespace ctrps::ps {

// Sends one keep-alive to both inboxes of every rank, this one's included
// (in colocated mode its server thread also waits for its own worker).
[[nodiscard]] Status SendKeepAlives(Transport* t);

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
