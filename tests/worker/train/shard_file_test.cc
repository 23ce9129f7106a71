// Shard files (storage/shard_file.h), the unit a checkpoint is made of:
// full and incremental round trips, truncation, bit flips and a file of
// another shard detected.
#include "storage/shard_file.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/embedding_store.h"
#include "tests/storage/temp_dir.h"
#include "tests/worker/train/checkpoint_job.h"

namespace ctrps::worker {
namespace {
namespace fs = std::filesystem;
using checkpoint_testing::FlipByte;
using checkpoint_testing::kShards;
using storage::testing::FreshDir;

TEST(ShardFileTest, RoundTripFullAndIncremental) {
  const std::string dir = FreshDir("shardfile");
  auto store = storage::NewMemoryStore();
  storage::TableSpec a{0, 3, 3, {}}, b{7, 2, 0, {}};
  ASSERT_TRUE(store->CreateTable(a).ok());
  ASSERT_TRUE(store->CreateTable(b).ok());
  for (int i = 0; i < 5000; ++i) {
    const Key k = MakeKey(i % 2 ? 7 : 0, Mix64(i));
    const int table = KeyTable(k);
    ASSERT_TRUE(store->Modify(table, &k, 1, static_cast<uint32_t>(1 + i % 10),
                              [&](size_t, float* row) { row[0] = static_cast<float>(i); }).ok());
  }
  auto full = storage::WriteStoreShards(*store, dir, kShards, {0, 1, 2, 3}, 10, 0);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  uint64_t rows = 0;
  for (const auto& f : *full) rows += f.rows;
  EXPECT_EQ(rows, 5000u);
  auto copy = storage::NewMemoryStore();
  ASSERT_TRUE(copy->CreateTable(a).ok());
  ASSERT_TRUE(copy->CreateTable(b).ok());
  for (uint32_t v = 0; v < kShards; ++v)
    ASSERT_TRUE(storage::LoadShardFile(dir + "/" + storage::ShardFileName(v), v, kShards, copy.get()).ok());
  for (int t : {0, 7}) {
    std::map<Key, std::pair<float, uint32_t>> x, y;
    ASSERT_TRUE(store->Scan(t, [&](Key k, const float* r, const storage::RowStats& s) {
      x[k] = {r[0], s.last_step};
      return true;
    }).ok());
    ASSERT_TRUE(copy->Scan(t, [&](Key k, const float* r, const storage::RowStats& s) {
      y[k] = {r[0], s.last_step};
      return true;
    }).ok());
    EXPECT_EQ(x, y);
  }
  // Incremental: only rows last updated after step 7 (steps 8, 9, 10).
  const std::string inc = FreshDir("shardfile-inc");
  auto part = storage::WriteStoreShards(*store, inc, kShards, {0, 1, 2, 3}, 10, 7);
  ASSERT_TRUE(part.ok());
  rows = 0;
  for (const auto& f : *part) rows += f.rows;
  EXPECT_EQ(rows, 1500u);
}

TEST(ShardFileTest, DetectsTruncationBitFlipsAndWrongShard) {
  const std::string dir = FreshDir("shardfile-bad");
  auto store = storage::NewMemoryStore();
  storage::TableSpec a{0, 4, 0, {}};
  ASSERT_TRUE(store->CreateTable(a).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back(Mix64(i) >> 8);
  std::vector<float> out(keys.size() * 4);
  ASSERT_TRUE(store->Lookup(0, keys.data(), keys.size(), out.data(), 4, true).ok());
  ASSERT_TRUE(storage::WriteStoreShards(*store, dir, 2, {0, 1}, 1, 0).ok());
  const std::string f0 = dir + "/" + storage::ShardFileName(0);
  ASSERT_TRUE(storage::ReadShardFile(f0, nullptr, nullptr).ok());
  // Wrong shard.
  auto wrong = storage::LoadShardFile(f0, 1, 2, store.get());
  EXPECT_NE(wrong.message().find("holds shard 0 of 2"), std::string::npos) << wrong.ToString();
  // Bit flip in the middle.
  const std::string flipped = dir + "/flipped";
  fs::copy_file(f0, flipped);
  FlipByte(flipped, fs::file_size(flipped) / 2);
  Status s = storage::ReadShardFile(flipped, nullptr, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("flipped"), std::string::npos);
  // Truncated: every cut is detected.
  const uint64_t size = fs::file_size(f0);
  for (uint64_t cut : {uint64_t{0}, uint64_t{10}, size / 3, size - 1}) {
    const std::string t = dir + "/cut";
    fs::remove(t);
    fs::copy_file(f0, t);
    fs::resize_file(t, cut);
    Status c = storage::ReadShardFile(t, nullptr, nullptr);
    EXPECT_EQ(c.code(), Status::Code::kCorruption) << cut;
    // Nothing is loaded from a damaged file.
    auto empty = storage::NewMemoryStore();
    ASSERT_TRUE(empty->CreateTable(a).ok());
    EXPECT_FALSE(storage::LoadShardFile(t, 0, 2, empty.get()).ok());
    EXPECT_EQ(empty->Stats(0)->rows, 0u);
  }
}

}  // namespace
}  // namespace ctrps::worker
