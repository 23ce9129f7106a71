// RocksDB-store specifics: per-virtual-shard stores sharing one directory
// (as the parameter servers open them), shard routing, option validation.
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store_factory.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

TableSpec Spec() { return testing::MakeSpec(3, 4, 4); }

TEST(RocksDbStoreTest, OneStorePerVirtualShardInOneDirectory) {
  const std::string dir = testing::FreshDir("per-shard");
  std::vector<std::unique_ptr<EmbeddingStore>> stores;
  for (uint32_t v = 0; v < 4; ++v) {
    RocksDbOptions o = testing::SmallRocksDb(dir);
    o.shards = {v};
    auto s = OpenRocksDbStore(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->CreateTable(Spec()).ok());
    stores.push_back(std::move(s).value());
  }
  std::vector<Key> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back(MakeKey(3, i));
  size_t rows = 0;
  for (uint32_t v = 0; v < 4; ++v) {
    std::vector<Key> mine;
    for (Key k : keys)
      if (VirtualShardOf(k, 4) == v) mine.push_back(k);
    ASSERT_TRUE(stores[v]->Modify(3, mine.data(), mine.size(), 1, [](size_t, float* r) { r[0] = 1; }).ok());
    rows += stores[v]->Stats(3)->rows;
    // A key of another shard is refused, naming the shard.
    Key other = keys[0];
    for (Key k : keys)
      if (VirtualShardOf(k, 4) != v) { other = k; break; }
    float out[4];
    Status s = stores[v]->Lookup(3, &other, 1, out, 4, true);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("virtual shard"), std::string::npos) << s.message();
  }
  EXPECT_EQ(rows, keys.size());
  for (uint32_t v = 0; v < 4; ++v) EXPECT_TRUE(std::filesystem::is_directory(dir + "/" + "shard-000" + std::to_string(v)));
  // All shards reopened as one store see every row.
  stores.clear();
  auto all = OpenRocksDbStore(testing::SmallRocksDb(dir));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ((*all)->Stats(3)->rows, keys.size());
}

TEST(RocksDbStoreTest, VirtualShardCountIsFixed) {
  const std::string dir = testing::FreshDir("vshards");
  ASSERT_TRUE(OpenRocksDbStore(testing::SmallRocksDb(dir)).ok());
  RocksDbOptions o = testing::SmallRocksDb(dir);
  o.virtual_shards = 8;
  auto s = OpenRocksDbStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("4 virtual shards"), std::string::npos) << s.status().message();
}

TEST(RocksDbStoreTest, OptionsAreValidated) {
  RocksDbOptions o = testing::SmallRocksDb("/tmp/x");
  o.block_cache_bytes = 1000;
  EXPECT_EQ(o.Validate().code(), Status::Code::kInvalidArgument);
  o = testing::SmallRocksDb("");
  EXPECT_EQ(o.Validate().code(), Status::Code::kInvalidArgument);
  o = testing::SmallRocksDb("/tmp/x");
  o.shards = {4};
  EXPECT_NE(o.Validate().message().find("shard 4"), std::string::npos);
  TieredOptions t;
  t.disk = testing::SmallRocksDb("/tmp/x");
  t.dram_budget_bytes = 1000;
  EXPECT_EQ(t.Validate().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps::storage

namespace ctrps::storage {
namespace {

uint64_t SstBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".sst") n += e.file_size();
  return n;
}

// A dropped table (UMEC's removed fields) gives its disk space back at
// once: range deletion, then compaction of the range, not tombstones left
// for some later compaction.
TEST(RocksDbStoreTest, DropTableReturnsTheDiskSpace) {
  const std::string dir = testing::FreshDir("drop-space");
  auto s = OpenRocksDbStore(testing::SmallRocksDb(dir));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EmbeddingStore& store = **s;
  ASSERT_TRUE(store.CreateTable(testing::MakeSpec(3, 16, 0)).ok());
  ASSERT_TRUE(store.CreateTable(testing::MakeSpec(4, 16, 0)).ok());
  for (int t : {3, 4}) {
    std::vector<Key> keys;
    for (int i = 0; i < 20000; ++i) keys.push_back(MakeKey(t, static_cast<uint64_t>(i) * 7919));
    ASSERT_TRUE(store.Modify(t, keys.data(), keys.size(), 16,
                             [](size_t i, float* r) { for (int j = 0; j < 16; ++j) r[j] = 0.001f * (i + j); })
                    .ok());
  }
  ASSERT_TRUE(store.Flush().ok());
  const uint64_t before = SstBytes(dir);
  ASSERT_GT(before, 1000000u);  // 40000 rows of 64 bytes
  ASSERT_TRUE(store.DropTable(3).ok());
  const uint64_t after = SstBytes(dir);
  EXPECT_LT(after, before * 0.7) << "before " << before << " after " << after;
  EXPECT_EQ(store.Stats(4)->rows, 20000u);  // the other table intact
  EXPECT_FALSE(store.Stats(3).ok());
}

}  // namespace
}  // namespace ctrps::storage
