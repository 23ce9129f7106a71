// Admission and eviction of rows, per table, as a wrapper over any
// EmbeddingStore (NewPolicyStore).
//
// Admission: a training lookup (create_missing) of a key without a row
// creates the row only if the key is admitted:
// - min_seen N > 1: the key was seen in N training lookups. Sightings are
//   counted in a count-min sketch of 8-bit saturating counters (4 rows,
//   counter_bytes in all, conservative update), not in rows: a key costs no
//   row until it is admitted. The sketch can only over-count, so a key is
//   never admitted late; it may (rarely) be admitted early.
// - probability p < 1: each sighting of a not-yet-admitted key admits it
//   with probability p (a draw from a hash of key, seed and the table's call
//   count, so a run is reproducible); an admitted key is marked in the sketch.
// A lookup of a not-admitted key returns its key-seeded initial value and
// stores nothing; its update (Modify) is dropped. Keys that already have a
// row (e.g. in a restored store whose sketch is empty) are always served and
// updated. Counters: admitted, rejected_lookups, dropped_updates.
//
// Eviction: Evict(table, policy) removes rows unseen for more than
// max_unseen_steps steps or seen fewer than min_count times, counted apart
// (evicted_stale, evicted_rare). It runs on demand, automatically every
// `every_steps` training steps, and before every Snapshot (with the last
// step seen). An evicted key's sketch count is kept, so it is re-admitted at
// its next sighting.
//
// Virtual shards: all policy state (sketch, call count, last step, the
// eviction schedule, counters) is kept per (table, virtual shard), and each
// shard decides only from its own keys' calls. So one store holding every
// shard (the single-process trainer) and one store per shard (a parameter
// server) admit and evict exactly the same keys, and a shard's state moves
// with it: SavePolicyState/LoadPolicyState give it to checkpoints, which
// store it in the shard's row file, so a resumed run continues the same
// decisions. Scheduled eviction of a shard runs on the first Modify that
// touches it at or after a multiple M of every_steps (before applying it),
// as of step M.
//
// Thread safety: as the wrapped store; the policy state is per table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "storage/embedding_store.h"

namespace ctrps::storage {

struct AdmissionOptions {
  // Admit a key at its min_seen-th training sighting; 0 or 1 = at once. At most 255.
  uint32_t min_seen = 0;
  // Admit a not-yet-admitted key with this probability per sighting; 1 = always.
  // Only one of min_seen > 1 and probability < 1 may be set.
  double probability = 1.0;
  uint64_t seed = 0;  // seed of the probability draws
  // Bytes of the count-min sketch of the table (4 rows of 8-bit counters).
  // Rule of thumb: >= 2 bytes per distinct key in a window of the stream.
  size_t counter_bytes = size_t{4} << 20;
  bool enabled() const { return min_seen > 1 || probability < 1.0; }
  Status Validate() const;
};

struct EvictionOptions {
  uint32_t max_unseen_steps = 0;  // evict rows not updated for more steps; 0 = off
  uint32_t min_count = 0;         // evict rows updated fewer times; 0 = off
  uint32_t every_steps = 0;       // evict automatically every N steps; 0 = on demand and snapshots only
  bool enabled() const { return max_unseen_steps > 0 || min_count > 0; }
  Status Validate() const;
};

struct TablePolicy {
  AdmissionOptions admission;
  EvictionOptions eviction;
  bool enabled() const { return admission.enabled() || eviction.enabled(); }
};

struct PolicyOptions {
  TablePolicy defaults;                 // tables not in per_table
  std::map<int, TablePolicy> per_table;  // by table id
  // Keys fall in num_virtual_shards virtual shards (VirtualShardOf); the
  // store holds `shards` of them (empty = all). Each (table, shard) gets an
  // admission sketch of counter_bytes / num_virtual_shards (at least
  // kMinShardSketchBytes), so the job's sketch memory and decisions do not
  // depend on how shards are spread over processes.
  uint32_t num_virtual_shards = 1;
  std::vector<uint32_t> shards;
  static constexpr size_t kMinShardSketchBytes = size_t{16} << 10;
  const TablePolicy& For(int table) const {
    auto it = per_table.find(table);
    return it == per_table.end() ? defaults : it->second;
  }
  bool enabled() const;
  Status Validate() const;
};

// Wraps `inner` with the policies. Returns `inner` itself when no policy is
// enabled, so a job without policies pays nothing.
StatusOr<std::unique_ptr<EmbeddingStore>> NewPolicyStore(std::unique_ptr<EmbeddingStore> inner,
                                                         const PolicyOptions& opt);

}  // namespace ctrps::storage
