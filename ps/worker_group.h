// Collectives among the workers of a job (servers take no part), built on
// the Transport so they run under MPI and in-process alike. Every result
// is computed in worker order and the same bytes reach every worker, so
// all workers hold bit-identical results and a run is reproducible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "ps/keep_alive.h"
#include "ps/transport.h"

namespace ctrps::ps {

class WorkerGroup {
 public:
  // worker_ranks: the group's ranks in worker order; transport's rank must
  // be one of them. Both must outlive the group.
  WorkerGroup(Transport* transport, std::vector<int> worker_ranks, int64_t peer_timeout_ms);

  int index() const { return index_; }
  int size() const { return static_cast<int>(ranks_.size()); }

  // data[i] = mean over workers of data[i]: summed in worker order, then
  // multiplied by 1/size (skipped for one worker, so a 1-worker job matches
  // the single-process trainer bit for bit). `what` names the operation in
  // timeout errors ("dense gradient allreduce at step 12"). A pipelined
  // chain in chunks of chunk_floats: per worker, O(n) traffic and work
  // whatever the number of workers.
  [[nodiscard]] Status AllreduceMean(float* data, size_t n, const std::string& what);
  void set_chunk_floats(size_t c) { chunk_floats_ = std::max<size_t>(c, 1); }
  // True when every worker passes true.
  [[nodiscard]] StatusOr<bool> AllTrue(bool mine, const std::string& what);
  // True when at least one worker passes true.
  [[nodiscard]] StatusOr<bool> AnyTrue(bool mine, const std::string& what);
  // Worker 0 receives every worker's bytes in worker order (others get {}).
  [[nodiscard]] StatusOr<std::vector<std::vector<char>>> Gather(std::vector<char> mine,
                                                                const std::string& what);
  // Worker 0's bytes, on every worker.
  [[nodiscard]] Status Broadcast(std::vector<char>* bytes, const std::string& what);

  // While the returned scope lives, every rank of the job (servers too)
  // hears from this one often enough not to time out waiting for it:
  // for long work on its own, such as restoring a reader position.
  [[nodiscard]] std::unique_ptr<KeepAlive> StayAlive() const;

 private:
  StatusOr<Message> RecvFrom(int index, const std::string& what);

  Transport* t_;
  std::vector<int> ranks_;
  int index_ = -1;
  int64_t timeout_ms_;
  size_t chunk_floats_ = size_t{64} << 10;  // 256 KiB messages
};

}  // namespace ctrps::ps
