// A failing shard write is reported and leaves the store as it was, at every
// position in a multi-shard batch, for the RocksDB and tiered stores.
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store_factory.h"
#include "tests/storage/fault_injection.h"
#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

using Contents = std::map<Key, std::vector<float>>;

Contents Dump(EmbeddingStore* s, int table, int rf) {
  Contents c;
  Status st = s->Scan(table, [&](Key k, const float* row, const RowStats& rs) {
    std::vector<float> v(row, row + rf);
    v.push_back(static_cast<float>(rs.count));
    v.push_back(static_cast<float>(rs.last_step));
    c[k] = v;
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return c;
}

class FaultInjectionTest : public ::testing::TestWithParam<bool /*tiered*/> {
 protected:
  void SetUp() override {
    RocksDbOptions o = testing::SmallRocksDb(testing::FreshDir("fault"));
    faults_.Install(&o);
    if (GetParam()) {
      TieredOptions t;
      t.disk = o;
      t.dram_budget_bytes = 64 << 10;  // ~1000 rows: batches overflow into eviction and bypass
      auto s = OpenTieredStore(t);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store_ = std::move(s).value();
    } else {
      auto s = OpenRocksDbStore(o);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store_ = std::move(s).value();
    }
    TableSpec spec;
    spec.table_id = 1;
    spec.dim = 4;
    spec.slot_floats = 4;
    ASSERT_TRUE(store_->CreateTable(spec).ok());
    for (int i = 0; i < 3000; ++i) keys_.push_back(MakeKey(1, i * 13 + 1));
    ASSERT_TRUE(store_->Modify(1, keys_.data(), 2000, 1, [](size_t i, float* r) { r[0] = i; }).ok());
  }
  testing::WriteFaultInjector faults_;
  std::unique_ptr<EmbeddingStore> store_;
  std::vector<Key> keys_;  // 2000 with rows, 1000 without
};

TEST_P(FaultInjectionTest, FailedModifyIsNotHalfApplied) {
  int injected = 0;
  for (int k = 0; k < 8; ++k) {
    Contents before = Dump(store_.get(), 1, 8);
    uint64_t rows = store_->Stats(1)->rows;
    faults_.Arm(k);
    Status s = store_->Modify(1, keys_.data(), keys_.size(), 2 + k, [](size_t, float* r) { r[1] += 1; });
    faults_.Disarm();
    if (s.ok()) {
      // The batch needed fewer than k+1 writes, so no fault fired: every
      // write position of the batch has been covered.
      EXPECT_EQ(faults_.injected(), injected);
      break;
    }
    ++injected;
    EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
    EXPECT_NE(s.message().find("injected"), std::string::npos) << s.ToString();
    EXPECT_EQ(store_->Stats(1)->rows, rows) << "fault at write " << k;
    EXPECT_EQ(Dump(store_.get(), 1, 8), before) << "fault at write " << k;
  }
  EXPECT_GE(injected, 2);  // at least two positions inside the batch were hit
  // Without faults the same call applies.
  ASSERT_TRUE(store_->Modify(1, keys_.data(), keys_.size(), 50, [](size_t, float* r) { r[1] += 1; }).ok());
  Contents after = Dump(store_.get(), 1, 8);
  EXPECT_EQ(after.size(), keys_.size());
  for (const auto& [k, v] : after) EXPECT_EQ(v[9], 50.0f);
}

TEST_P(FaultInjectionTest, FailedPutAndEraseAreNotHalfApplied) {
  std::vector<float> rows(keys_.size() * 8, 3.0f);
  for (int k = 0; k < 3; ++k) {
    Contents before = Dump(store_.get(), 1, 8);
    faults_.Arm(k);
    Status put = store_->Put(1, keys_.data(), keys_.size(), rows.data(), nullptr);
    faults_.Disarm();
    EXPECT_FALSE(put.ok()) << "fault at write " << k;
    EXPECT_EQ(Dump(store_.get(), 1, 8), before) << "fault at write " << k;
    faults_.Arm(k);
    Status erase = store_->Erase(1, keys_.data(), 1500);
    faults_.Disarm();
    EXPECT_FALSE(erase.ok()) << "fault at write " << k;
    EXPECT_EQ(Dump(store_.get(), 1, 8), before) << "fault at write " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(DiskStores, FaultInjectionTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "tiered" : "rocksdb"; });

}  // namespace
}  // namespace ctrps::storage
