// Options of the disk-backed stores. Filled by launch/ from the StorageConfig
// message; each field states its meaning, unit and default.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ctrps::storage {

// The RocksDB store: one RocksDB instance per virtual shard, in
// <dir>/shard-NNNN, tuned for point lookups of fixed-size rows.
struct RocksDbOptions {
  std::string dir;                 // root directory; created if missing
  uint32_t virtual_shards = 16;    // V, fixed when the store is first created (persisted)
  std::vector<uint32_t> shards;    // the shards this process holds; empty = all V
  // One LRU block cache shared by all shards. Rows are read from it without
  // touching the disk once warm; size it to the working set that misses DRAM.
  size_t block_cache_bytes = size_t{256} << 20;
  // Total memtable memory of all shards (a shared WriteBufferManager);
  // each shard's write buffer is a fraction of it.
  size_t memtable_bytes = size_t{64} << 20;
  // The block cache's kind: HyperClockCache (lock-free lookups, RocksDB
  // marks it experimental in 7.x) when true, else a sharded LRU cache.
  bool hyper_clock_cache = false;
  int bloom_bits_per_key = 10;     // whole-key bloom filter; 0 = none
  size_t block_size_bytes = 4096;  // data block size (smaller = less read amplification)
  // No filters on the last level (every lookup of a trained key hits).
  bool optimize_filters_for_hits = true;
  // false (default): index and filter blocks live in the open table readers
  // (about 2 bytes per row, outside block_cache_bytes), so a lookup makes no
  // block-cache probe for them, and every SST stays open (max_open_files
  // -1). true: they are charged to the block cache (memory bounded by
  // block_cache_bytes, lookups slower).
  bool cache_index_and_filter_blocks = false;
  int background_jobs = 2;         // flush + compaction threads, shared by all shards
  // Threads that serve one batch call's per-shard reads (one MultiGet per
  // virtual shard touched), the calling thread included: read_threads - 1
  // helper threads are owned by the store and shared by its tables. 1 =
  // every read on the calling thread. Results never depend on it. In
  // [1, 64]; default 2.
  int read_threads = 2;
  // Test seam: called before each shard's write batch is applied; a non-OK
  // Status fails that shard's write (fault injection). Unset in production.
  std::function<Status(uint32_t shard)> write_fault_for_test;

  Status Validate() const;
};

// The tiered store: a DRAM tier of bounded bytes over the RocksDB store.
struct TieredOptions {
  RocksDbOptions disk;
  // Bytes of DRAM for resident rows and their per-row bookkeeping (key,
  // stats, flags, index), split across tables by equal row counts.
  size_t dram_budget_bytes = size_t{1} << 30;
  Status Validate() const;
};

}  // namespace ctrps::storage
