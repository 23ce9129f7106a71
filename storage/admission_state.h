// Internal to the admission/eviction wrapper (admission.cc): the policy
// state of one virtual shard of a table, and its encoding for checkpoints
// (EmbeddingStore::SavePolicyState, stored in shard files).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"
#include "common/status.h"
#include "storage/admission.h"

namespace ctrps::storage::policy_state {

// Count-min sketch of 8-bit saturating counters, conservative update.
class CountMinSketch {
 public:
  static constexpr int kDepth = 4;
  static constexpr uint8_t kMarked = 255;  // saturated = admitted by probability

  explicit CountMinSketch(size_t bytes) {
    size_t w = 64;
    while (w * 2 * kDepth <= bytes) w *= 2;
    width_mask_ = w - 1;
    counters_.assign(w * kDepth, 0);
  }
  uint8_t Get(Key k) const {
    uint8_t m = 255;
    for (int d = 0; d < kDepth; ++d) m = std::min(m, counters_[Index(k, d)]);
    return m;
  }
  // Adds one sighting; returns the new estimate.
  uint8_t Add(Key k) {
    uint8_t m = Get(k);
    if (m == 255) return m;
    for (int d = 0; d < kDepth; ++d) {
      uint8_t& c = counters_[Index(k, d)];
      if (c == m) ++c;
    }
    return m + 1;
  }
  void Mark(Key k) {
    for (int d = 0; d < kDepth; ++d) counters_[Index(k, d)] = kMarked;
  }
  size_t bytes() const { return counters_.size(); }
  uint8_t* data() { return counters_.data(); }
  const uint8_t* data() const { return counters_.data(); }

 private:
  size_t Index(Key k, int d) const {
    return d * (width_mask_ + 1) + (Mix64(k + 0x9e3779b97f4a7c15ULL * (d + 1)) & width_mask_);
  }
  size_t width_mask_ = 0;
  std::vector<uint8_t> counters_;
};

// The policy state of one virtual shard of a table: counters, and the
// sketch when admission is on.
struct ShardCounters {
  uint64_t calls = 0;            // training lookups that touched the shard
  uint32_t last_step = 0;        // newest step of a Modify of the shard
  uint32_t last_evict_step = 0;  // step of the last scheduled eviction check
  uint64_t admitted = 0, rejected_lookups = 0, dropped_updates = 0, evicted_stale = 0,
           evicted_rare = 0;
};
struct ShardPolicy : ShardCounters {
  std::unique_ptr<CountMinSketch> sketch;  // only with admission
};

// Blob of one shard, little-endian:
//   "CTRPPOL1", u32 num_virtual_shards, u32 shard, u32 num_tables, u32 0
//   per table: i32 table_id, u32 min_seen, f64 probability,
//              u64 sketch_bytes (0 = none), u64 calls, u32 last_step,
//              u32 last_evict_step, u64 admitted, rejected_lookups,
//              dropped_updates, evicted_stale, evicted_rare, then the sketch.
void AppendStateHeader(std::string* out, uint32_t num_virtual_shards, uint32_t shard,
                       uint32_t num_tables);
void AppendTableState(std::string* out, int table_id, const AdmissionOptions& admission,
                      const ShardPolicy& state);

// One table's entry of a blob.
struct TableStateRecord {
  int32_t table_id = 0;
  uint32_t min_seen = 0;     // the admission settings it was written under
  double probability = 1.0;
  ShardCounters counters;
  std::vector<uint8_t> sketch;  // empty without admission
};
// Parses a whole blob written for `shard` of `num_virtual_shards`; a
// Corruption naming the shard if it is damaged or was written for another.
StatusOr<std::vector<TableStateRecord>> DecodeShardState(const std::string& blob,
                                                         uint32_t num_virtual_shards,
                                                         uint32_t shard);

}  // namespace ctrps::storage::policy_state
