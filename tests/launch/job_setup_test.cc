// The store options launch/ derives from the storage section.
#include "launch/job_setup.h"

#include <gtest/gtest.h>

namespace ctrps::launch {
namespace {

// TIERED: dram_budget_bytes is the store's whole DRAM. RocksDB's block cache
// and memtables come out of it unless set (before, their defaults of 256
// and 64 MiB came on top: a 16 MiB budget peaked at 418 MiB RSS).
TEST(JobSetupTest, TieredSizesRocksDbFromTheDramBudget) {
  config::StorageConfig s;
  s.set_kind(config::StorageConfig::TIERED);
  s.set_path("store");
  s.set_dram_budget_bytes(16 << 20);
  storage::StoreOptions o = MakeStoreOptions(s);
  EXPECT_EQ(o.rocksdb.block_cache_bytes, size_t{2} << 20);
  EXPECT_EQ(o.rocksdb.memtable_bytes, size_t{2} << 20);
  EXPECT_EQ(o.dram_budget_bytes, size_t{12} << 20);
  EXPECT_EQ(o.dram_budget_bytes + o.rocksdb.block_cache_bytes + o.rocksdb.memtable_bytes,
            size_t{16} << 20);
  EXPECT_TRUE(o.Validate().ok());
  // Set explicitly: kept, and still taken out of the budget.
  s.set_block_cache_bytes(4 << 20);
  o = MakeStoreOptions(s);
  EXPECT_EQ(o.rocksdb.block_cache_bytes, size_t{4} << 20);
  EXPECT_EQ(o.rocksdb.memtable_bytes, size_t{2} << 20);
  EXPECT_EQ(o.dram_budget_bytes, size_t{10} << 20);
  // A tiny budget: RocksDB's 1 MiB minimums, the tier at its 64 KiB floor.
  s.clear_block_cache_bytes();
  s.set_dram_budget_bytes(1 << 20);
  o = MakeStoreOptions(s);
  EXPECT_EQ(o.rocksdb.block_cache_bytes, size_t{1} << 20);
  EXPECT_EQ(o.dram_budget_bytes, size_t{64} << 10);
  EXPECT_TRUE(o.Validate().ok());
  // ROCKSDB (no DRAM tier): RocksDB's own defaults.
  s.set_kind(config::StorageConfig::ROCKSDB);
  o = MakeStoreOptions(s);
  EXPECT_EQ(o.rocksdb.block_cache_bytes, size_t{256} << 20);
  EXPECT_EQ(o.rocksdb.memtable_bytes, size_t{64} << 20);
}

}  // namespace
}  // namespace ctrps::launch
