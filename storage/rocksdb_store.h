// The RocksDB store (private to storage/; others use store_factory.h): an
// EmbeddingStore over one RocksDB instance per virtual shard, in
// <dir>/shard-NNNN, routing every key by VirtualShardOf(key, V).
//
// A batch call groups its keys by shard, sorts them, and issues one MultiGet
// and one WriteBatch per shard touched. Each shard's batch is atomic; across
// shards, a batch whose write fails on shard k is undone on the shards
// already written (their previous rows restored from the values read for
// the call), so a failing call is not half-applied unless the undo also
// fails, which is reported as Internal ("store may be inconsistent").
//
// Scan reads the shards' instances in shard order, each in key order;
// ScanShards(V, wanted) with the store's own V reads only the wanted ones.
#pragma once

#include <memory>

#include "storage/embedding_store.h"
#include "storage/store_options.h"

namespace ctrps::storage {

class RocksDbStore : public EmbeddingStore {
 public:
  static StatusOr<std::unique_ptr<RocksDbStore>> Open(const RocksDbOptions& opt);

  // Disk-tier access for the tiered store: no create-on-miss, no counters.
  // Reads rows (row_floats each) and stats of unique keys; found[i] says
  // whether key i has a row (rows/stats of absent keys are left untouched).
  [[nodiscard]] virtual Status ReadRows(int table, const Key* keys, size_t n, float* rows,
                                        RowStats* stats, uint8_t* found) = 0;
  // Writes rows and stats of unique keys verbatim, atomically (as above).
  [[nodiscard]] virtual Status WriteRows(int table, const Key* keys, size_t n, const float* rows,
                                         const RowStats* stats) = 0;
  // The rows of `table` in one virtual shard's instance, in key order
  // (nothing if the shard is not held). For the tiered store's ScanShards.
  [[nodiscard]] virtual Status ScanShard(int table, uint32_t shard, const ScanFn& fn) const = 0;
  // V, the virtual shard count the store was created with.
  virtual uint32_t virtual_shards() const = 0;
};

// Writes <dir>/VIRTUAL_SHARDS or checks it against v.
Status CheckVirtualShardsFile(const std::string& dir, uint32_t v);
std::string ShardDirName(uint32_t shard);  // "shard-0007"

}  // namespace ctrps::storage
