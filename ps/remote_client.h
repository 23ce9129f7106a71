// The EmbeddingClient of a worker in a distributed job: one message per
// server per call (never per key), replies checked against the request.
#pragma once

#include <memory>

#include "ps/client.h"
#include "ps/layout.h"
#include "ps/transport.h"

namespace ctrps::ps {

struct RemoteClientOptions {
  ClusterLayout layout;
  Consistency consistency = Consistency::kBSP;
  // SSP: pushes that may be in flight (sent, not yet applied) before Push
  // waits. ASP uses a fixed flow-control bound of 64.
  int staleness = 2;
  // How long to wait for any one reply before the server is declared gone.
  int64_t peer_timeout_ms = 60000;
};

// `transport` must outlive the client; its rank must be a worker rank.
std::unique_ptr<EmbeddingClient> NewRemoteClient(RemoteClientOptions options, Transport* transport);

}  // namespace ctrps::ps
