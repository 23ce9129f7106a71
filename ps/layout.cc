#include "ps/layout.h"

#include <algorithm>

namespace ctrps::ps {

const char* ConsistencyName(Consistency c) {
  switch (c) {
    case Consistency::kBSP: return "BSP";
    case Consistency::kASP: return "ASP";
    case Consistency::kSSP: return "SSP";
  }
  return "?";
}

StatusOr<ClusterLayout> ClusterLayout::Make(int world_size, int num_servers, bool colocated,
                                            int num_virtual_shards) {
  if (world_size < 1) return Status::InvalidArgument("world size must be >= 1");
  if (num_virtual_shards < 1 || num_virtual_shards > (1 << 16))
    return Status::InvalidArgument("num_virtual_shards " + std::to_string(num_virtual_shards) +
                                   " out of range [1, 65536]");
  ClusterLayout l;
  l.world_size = world_size;
  l.num_virtual_shards = num_virtual_shards;
  l.colocated = colocated;
  if (colocated) {
    if (num_servers != 0 && num_servers != world_size)
      return Status::InvalidArgument(
          "colocated mode makes every rank a server and a worker: servers must be 0 or " +
          std::to_string(world_size) + " (the rank count), got " + std::to_string(num_servers));
    num_servers = world_size;
    for (int r = 0; r < world_size; ++r) {
      l.server_ranks.push_back(r);
      l.worker_ranks.push_back(r);
    }
  } else {
    if (num_servers < 1 || num_servers >= world_size)
      return Status::InvalidArgument(
          "cannot run " + std::to_string(num_servers) + " servers on " +
          std::to_string(world_size) + " ranks: dedicated mode needs 1 <= servers < ranks, so " +
          "at least one rank is left to train (use colocated mode, or more ranks)");
    for (int r = 0; r < world_size; ++r)
      (r < num_servers ? l.server_ranks : l.worker_ranks).push_back(r);
  }
  if (num_servers > num_virtual_shards)
    return Status::InvalidArgument(std::to_string(num_servers) + " servers but only " +
                                   std::to_string(num_virtual_shards) +
                                   " virtual shards: a server would own no shard; raise "
                                   "num_virtual_shards or use fewer servers");
  return l;
}

int ClusterLayout::ServerIndex(int rank) const {
  auto it = std::find(server_ranks.begin(), server_ranks.end(), rank);
  return it == server_ranks.end() ? -1 : static_cast<int>(it - server_ranks.begin());
}

int ClusterLayout::WorkerIndex(int rank) const {
  auto it = std::find(worker_ranks.begin(), worker_ranks.end(), rank);
  return it == worker_ranks.end() ? -1 : static_cast<int>(it - worker_ranks.begin());
}

std::string ClusterLayout::Describe(int rank) const {
  std::string s = "rank " + std::to_string(rank) + " (";
  const int si = ServerIndex(rank), wi = WorkerIndex(rank);
  if (si >= 0) s += "server " + std::to_string(si);
  if (si >= 0 && wi >= 0) s += " + ";
  if (wi >= 0) s += "worker " + std::to_string(wi);
  if (si < 0 && wi < 0) s += "no role";
  if (NumHosts() > 1 && rank >= 0 && rank < static_cast<int>(hosts.size()))
    s += " on " + hosts[static_cast<size_t>(rank)];
  return s + ")";
}

int ClusterLayout::NumHosts() const {
  std::vector<std::string> h = hosts;
  std::sort(h.begin(), h.end());
  return std::max(1, static_cast<int>(std::unique(h.begin(), h.end()) - h.begin()));
}

}  // namespace ctrps::ps
