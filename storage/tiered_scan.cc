// ScanShards of the tiered store: each wanted shard's disk rows merged, in
// key order, with the rows DRAM holds newer (dirty) or alone (not yet on
// disk), without writing anything back: a checkpoint of a tiered store
// costs reads only, and writer threads with different shards run at once.
//
// The tier's lock is held while the dirty rows are indexed, then again
// while one shard's dirty rows are copied, never while fn runs. A row
// indexed as dirty but written back (or evicted) before its shard's copy
// is read from disk, which then holds it.
#include <algorithm>

#include "common/keys.h"
#include "storage/tiered_tier.h"

namespace ctrps::storage::tiered {

Status ScanTierShards(Tier* t, const RocksDbStore& disk, const std::vector<uint8_t>& wanted,
                      const EmbeddingStore::ScanFn& fn) {
  const uint32_t V = disk.virtual_shards();
  const int table = t->spec.table_id;
  const size_t rf = t->rf;
  struct Dirty {
    uint32_t shard;
    uint32_t slot;
    Key key;
  };
  std::vector<Dirty> dirty;
  {
    std::lock_guard lock(t->mu);
    for (uint32_t x = 0; x < t->keys.size(); ++x) {
      if (!t->NeedsWriteBack(x)) continue;
      const uint32_t s = VirtualShardOf(t->keys[x], V);
      if (wanted[s]) dirty.push_back({s, x, t->keys[x]});
    }
  }
  std::sort(dirty.begin(), dirty.end(), [](const Dirty& a, const Dirty& b) {
    return a.shard != b.shard ? a.shard < b.shard : a.key < b.key;
  });

  std::vector<Key> keys;  // one shard's DRAM rows, ascending
  std::vector<float> rows;
  std::vector<RowStats> stats;
  bool stop = false;
  size_t next = 0;  // first entry of `dirty` of the shard being read
  for (uint32_t s = 0; s < V && !stop; ++s) {
    if (!wanted[s]) continue;
    size_t end = next;
    while (end < dirty.size() && dirty[end].shard == s) ++end;
    keys.clear();
    rows.clear();
    stats.clear();
    if (end > next) {
      std::lock_guard lock(t->mu);
      for (size_t j = next; j < end; ++j) {
        const uint32_t x = dirty[j].slot;
        if (x >= t->keys.size() || t->keys[x] != dirty[j].key || !t->NeedsWriteBack(x)) continue;
        keys.push_back(dirty[j].key);
        rows.insert(rows.end(), t->Row(x), t->Row(x) + rf);
        stats.push_back(t->stats[x]);
      }
    }
    next = end;

    size_t d = 0;  // next DRAM row of this shard
    auto emit_dram = [&]() {
      if (!fn(keys[d], rows.data() + d * rf, stats[d])) stop = true;
      ++d;
      return !stop;
    };
    RETURN_IF_ERROR(disk.ScanShard(table, s, [&](Key k, const float* row, const RowStats& rs) {
      while (d < keys.size() && keys[d] < k)
        if (!emit_dram()) return false;
      if (d < keys.size() && keys[d] == k) return emit_dram();  // DRAM is newer
      if (!fn(k, row, rs)) stop = true;
      return !stop;
    }));
    while (!stop && d < keys.size()) emit_dram();
  }
  return Status::OK();
}

}  // namespace ctrps::storage::tiered
