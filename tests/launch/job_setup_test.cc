// The store options launch/ derives from the storage section.
#include "launch/job_setup.h"

#include <thread>

#include "launch/cluster.h"
#include "launch/config_loader.h"

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

// cluster.server_threads: 0 is the cores (at most 8) on a dedicated server
// and 1 on a colocated rank; a set value is kept; out of range is refused
// naming the field.
TEST(ClusterPlanTest, ServerThreads) {
  auto plan = [](const std::vector<std::string>& sets) -> StatusOr<ClusterPlan> {
    ASSIGN_OR_RETURN(LoadedConfig c, ParseConfigText("", "job.pbtxt", sets));
    return MakeClusterPlan(c, 4, -1);
  };
  auto dedicated = plan({});
  ASSERT_TRUE(dedicated.ok()) << dedicated.status().ToString();
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(dedicated->server_threads, std::clamp(cores, 1, 8));
  auto colocated = plan({"cluster.mode=COLOCATED"});
  ASSERT_TRUE(colocated.ok()) << colocated.status().ToString();
  EXPECT_EQ(colocated->server_threads, 1);
  auto set = plan({"cluster.server_threads=3"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->server_threads, 3);
  auto bad = plan({"cluster.server_threads=300"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cluster.server_threads"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace ctrps::launch
