// Snapshots: point-in-time content, restore, and verification that detects
// truncation, bit flips, missing and extra files.
#include "storage/snapshot.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store_factory.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {
namespace fs = std::filesystem;

class SnapshotTest : public ::testing::TestWithParam<bool /*tiered*/> {
 protected:
  StoreOptions Options(const std::string& dir) {
    StoreOptions o;
    o.kind = GetParam() ? StoreOptions::Kind::kTiered : StoreOptions::Kind::kRocksDb;
    o.rocksdb = testing::SmallRocksDb(dir);
    o.dram_budget_bytes = 256 << 10;
    return o;
  }
  void SetUp() override {
    root_ = testing::FreshDir("snap");
    auto s = OpenStore(Options(root_ + "/live"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    TableSpec spec;
    spec.table_id = 2;
    spec.dim = 8;
    spec.slot_floats = 8;
    ASSERT_TRUE(store_->CreateTable(spec).ok());
    for (int i = 0; i < 20000; ++i) keys_.push_back(MakeKey(2, i * 101 + 7));
    ASSERT_TRUE(store_->Modify(2, keys_.data(), keys_.size(), 1, [](size_t i, float* r) {
      r[0] = static_cast<float>(i);
    }).ok());
    snap_ = root_ + "/snap";
    ASSERT_TRUE(store_->Snapshot(snap_).ok());
  }
  std::vector<float> Read(EmbeddingStore* s) {
    std::vector<float> out(keys_.size() * 16);
    EXPECT_TRUE(s->Lookup(2, keys_.data(), keys_.size(), out.data(), 16, false).ok());
    return out;
  }
  // A private copy of the snapshot (the original shares inodes with the
  // live store through hard links, so it must not be damaged in place).
  std::string Copy(const std::string& name) {
    std::string dst = root_ + "/" + name;
    fs::copy(snap_, dst, fs::copy_options::recursive);
    return dst;
  }
  std::string SomeSst(const std::string& dir) {
    for (auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().extension() == ".sst" && fs::file_size(e.path()) > 1000) return e.path().string();
    ADD_FAILURE() << "no sst file in " << dir;
    return "";
  }
  std::string root_, snap_;
  std::unique_ptr<EmbeddingStore> store_;
  std::vector<Key> keys_;
};

TEST_P(SnapshotTest, RestoresThePointInTime) {
  ASSERT_TRUE(VerifySnapshot(snap_).ok()) << VerifySnapshot(snap_).ToString();
  std::vector<float> at_snapshot = Read(store_.get());
  ASSERT_TRUE(store_->Modify(2, keys_.data(), 100, 2, [](size_t, float* r) { r[0] = -1; }).ok());
  auto restored = OpenStoreFromSnapshot(snap_, Options(root_ + "/restored"));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(Read(restored->get()), at_snapshot);
  EXPECT_EQ((*restored)->Stats(2)->rows, keys_.size());
  // The restored store is live and independent of the snapshot.
  ASSERT_TRUE((*restored)->Modify(2, keys_.data(), 10, 3, [](size_t, float* r) { r[0] = 5; }).ok());
  ASSERT_TRUE((*restored)->Flush().ok());
  EXPECT_TRUE(VerifySnapshot(snap_).ok());
  EXPECT_EQ(store_->Snapshot(snap_).code(), Status::Code::kFailedPrecondition);  // exists
}

TEST_P(SnapshotTest, DetectsTruncation) {
  std::string d = Copy("trunc");
  std::string sst = SomeSst(d);
  fs::resize_file(sst, fs::file_size(sst) - 100);
  Status s = VerifySnapshot(d);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(fs::path(sst).filename().string()), std::string::npos) << s.message();
  auto restored = OpenStoreFromSnapshot(d, Options(root_ + "/r1"));
  EXPECT_FALSE(restored.ok());
  EXPECT_FALSE(fs::exists(root_ + "/r1"));
}

TEST_P(SnapshotTest, DetectsBitFlip) {
  std::string d = Copy("flip");
  std::string sst = SomeSst(d);
  {
    std::fstream f(sst, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(500);
    char c;
    f.get(c);
    f.seekp(500);
    f.put(static_cast<char>(c ^ 0x10));
  }
  Status s = VerifySnapshot(d);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("crc32"), std::string::npos) << s.message();
  EXPECT_FALSE(OpenStoreFromSnapshot(d, Options(root_ + "/r2")).ok());
}

TEST_P(SnapshotTest, DetectsMissingAndExtraFiles) {
  std::string d = Copy("missing");
  std::string sst = SomeSst(d);
  fs::remove(sst);
  Status s = VerifySnapshot(d);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();

  std::string e = Copy("extra");
  std::ofstream(e + "/shard-0000/000999.sst") << "stray";
  s = VerifySnapshot(e);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("not listed"), std::string::npos) << s.message();

  std::string m = Copy("nomanifest");
  fs::remove(m + "/" + kManifestName);
  s = VerifySnapshot(m);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("no manifest"), std::string::npos) << s.message();

  std::string g = Copy("garbled");
  std::ofstream(g + "/" + kManifestName, std::ios::app) << "12 zz\n";
  s = VerifySnapshot(g);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("malformed"), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(DiskStores, SnapshotTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "tiered" : "rocksdb"; });

}  // namespace
}  // namespace ctrps::storage
