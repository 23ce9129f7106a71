// Who is who in a distributed job: which ranks serve embedding shards, which
// train, and how virtual shards map to servers. A pure function of (world
// size, server count, colocated), so every rank computes the same layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"
#include "common/status.h"

namespace ctrps::ps {

// The salt of VirtualShardOf (common/keys.h); a test checks ShardOfKey
// against it for every shard count it might take.
inline constexpr uint64_t kVirtualShardSalt = 0x5ca1ab1e0ddba11ULL;

// How workers see each other's sparse updates.
enum class Consistency {
  kBSP,  // every step's pushes are merged in worker order, then applied; a barrier
  kASP,  // pushes are applied on arrival; the next pull overlaps compute
  kSSP,  // as ASP, but a worker waits once `staleness` of its pushes are unapplied
};
const char* ConsistencyName(Consistency c);

struct ClusterLayout {
  int world_size = 1;
  int num_virtual_shards = 16;  // V, fixed when the job is created
  bool colocated = false;       // every rank is both a server and a worker
  std::vector<int> server_ranks;
  std::vector<int> worker_ranks;
  // The host of each rank (MPI processor names), where the runtime filled
  // them in; Describe names a rank's host when the job spans several.
  std::vector<std::string> hosts;

  // Dedicated: ranks [0, num_servers) serve, the rest train. Colocated:
  // every rank does both (num_servers must be 0 or world_size). Errors name
  // what is impossible (no worker left, more servers than shards, ...).
  static StatusOr<ClusterLayout> Make(int world_size, int num_servers, bool colocated,
                                      int num_virtual_shards);

  int num_servers() const { return static_cast<int>(server_ranks.size()); }
  int num_workers() const { return static_cast<int>(worker_ranks.size()); }
  // Index of `rank` among the servers / workers, or -1.
  int ServerIndex(int rank) const;
  int WorkerIndex(int rank) const;
  // Virtual shards go to servers round-robin.
  int ServerOfShard(uint32_t shard) const {
    return static_cast<int>(shard % server_ranks.size());
  }
  int ServerOfKey(Key key) const { return ServerOfShard(ShardOfKey(key)); }
  // VirtualShardOf(key, V), without a division when V is a power of two
  // (the common case; the hot paths call this once per key).
  uint32_t ShardOfKey(Key key) const {
    const uint32_t v = static_cast<uint32_t>(num_virtual_shards);
    if ((v & (v - 1)) == 0) return static_cast<uint32_t>(Mix64(key ^ kVirtualShardSalt) & (v - 1));
    return VirtualShardOf(key, v);
  }
  // "rank 3 (server 1)", "rank 2 (worker 0)", "rank 0 (server 0 + worker 0)";
  // "rank 3 (server 1 on node7)" when the ranks are on more than one host.
  std::string Describe(int rank) const;
  // How many distinct hosts `hosts` names (1 when unknown).
  int NumHosts() const;
};

}  // namespace ctrps::ps
