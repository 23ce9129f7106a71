// A parameter server: owns the stores of its virtual shards and answers
// workers' pulls, pushes, declares, scans and loads until every worker has
// said it is done. Runs on the calling thread.
//
// BSP: a step's pushes are held until every worker has pushed that step;
// once all are there and valid they are acknowledged (the step barrier),
// then each key's gradients are summed in worker order (a fixed order, so
// runs are bit-for-bit reproducible) and applied once. ASP/SSP: every valid
// push is acknowledged on arrival, then applied. Either way the push is
// applied before the server reads its next request, so every later request
// (the next pull, a scan, a checkpoint) sees it, while the workers' next
// messages are already on their way (pushes and applying overlap).
//
// A malformed request is answered with an error message to its sender and
// the server keeps serving (a push with any bad slice is refused whole); the
// server itself fails (returns) only when a worker is silent beyond the
// timeout or a store fails (e.g. applying an acknowledged push).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "common/status.h"
#include "ps/layout.h"
#include "ps/transport.h"
#include "storage/embedding_store.h"

namespace ctrps::ps {

// From this many keys a request is worth a second thread: a slice is split
// over the server's threads (ServerOptions::threads), and an acknowledged
// push is applied on a second thread while the next request arrives (below
// it, waking a thread costs more than it overlaps).
inline constexpr size_t kServerThreadedKeys = 16384;

struct ServerOptions {
  ClusterLayout layout;
  Consistency consistency = Consistency::kBSP;
  // How long the server waits for any request (or, in BSP, for the rest of
  // a step's pushes) before it declares the workers gone.
  int64_t peer_timeout_ms = 60000;
  // Threads that look up and update the owned shards of one large request
  // at once (each shard is touched by one thread; the results do not depend
  // on the count). 1: all on the calling thread.
  int threads = 1;
  // Makes the store of one virtual shard. Default: a memory store.
  std::function<StatusOr<std::unique_ptr<storage::EmbeddingStore>>(uint32_t shard)> new_store;
};

class ParameterServer {
 public:
  virtual ~ParameterServer() = default;
  // Serves until every worker has sent its shutdown. The error of a failed
  // run names the peer rank and what the server was waiting for.
  [[nodiscard]] virtual Status Run() = 0;
};

// `transport` must outlive the server; its rank must be a server rank.
StatusOr<std::unique_ptr<ParameterServer>> NewParameterServer(ServerOptions options,
                                                              Transport* transport);

}  // namespace ctrps::ps
