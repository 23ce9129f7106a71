// Conformance suite for EmbeddingStore, run against every implementation.
#include "storage/embedding_store.h"

#include <functional>
#include <algorithm>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "tests/storage/store_fixtures.h"

namespace ctrps::storage {
namespace {

using testing::StoreKind;

class EmbeddingStoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshDir(GetParam().name);
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<EmbeddingStore> Fresh() { return GetParam().open(testing::FreshDir(GetParam().name)); }
  TableSpec Spec(int id, int dim, int slots) {
    TableSpec s;
    s.table_id = id;
    s.dim = dim;
    s.slot_floats = slots;
    s.init.seed = 7;
    s.init.scale = 0.5f;
    s.init.zero_prefix = 1;
    s.init.slot_value = 0.25f;
    return s;
  }
  std::string dir_;
  std::unique_ptr<EmbeddingStore> store_;
};

TEST_P(EmbeddingStoreTest, CreateOnMissIsKeySeeded) {
  ASSERT_TRUE(store_->CreateTable(Spec(3, 4, 2)).ok());
  std::vector<Key> keys = {MakeKey(3, 1), MakeKey(3, 2), MakeKey(3, 1)};
  std::vector<float> out(3 * 6);
  ASSERT_TRUE(store_->Lookup(3, keys.data(), keys.size(), out.data(), 6, true).ok());
  // Repeated key gives the same row; zero prefix and slot init applied.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[i], out[12 + i]);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NE(out[1], out[7]);
  EXPECT_EQ(out[4], 0.25f);
  for (int i = 1; i < 4; ++i) EXPECT_LE(std::abs(out[i]), 0.5f);
  // The value does not depend on arrival order: a fresh store asked in
  // reverse order gives the same rows.
  auto other = Fresh();
  ASSERT_TRUE(other->CreateTable(Spec(3, 4, 2)).ok());
  std::vector<Key> rev = {MakeKey(3, 2), MakeKey(3, 1)};
  std::vector<float> out2(2 * 4);
  ASSERT_TRUE(other->Lookup(3, rev.data(), 2, out2.data(), 4, true).ok());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out2[i], out[6 + i]);
    EXPECT_EQ(out2[4 + i], out[i]);
  }
  auto stats = store_->Stats(3);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rows, 2u);
}

TEST_P(EmbeddingStoreTest, LookupWithoutCreateDoesNotGrow) {
  ASSERT_TRUE(store_->CreateTable(Spec(3, 4, 2)).ok());
  Key k = MakeKey(3, 77);
  std::vector<float> a(6), b(6);
  ASSERT_TRUE(store_->Lookup(3, &k, 1, a.data(), 6, false).ok());
  EXPECT_EQ(store_->Stats(3)->rows, 0u);
  ASSERT_TRUE(store_->Lookup(3, &k, 1, b.data(), 6, true).ok());
  EXPECT_EQ(store_->Stats(3)->rows, 1u);
  EXPECT_EQ(a, b);  // the uncreated row reads as its initial value
}

TEST_P(EmbeddingStoreTest, ModifyUpdatesRowAndSlotsTogether) {
  ASSERT_TRUE(store_->CreateTable(Spec(1, 2, 1)).ok());
  std::vector<Key> keys = {MakeKey(1, 10), MakeKey(1, 11)};
  ASSERT_TRUE(store_->Modify(1, keys.data(), 2, 5, [](size_t i, float* row) {
    row[0] = 100.0f + i;
    row[2] = 7.0f;
  }).ok());
  std::vector<float> out(2 * 3);
  ASSERT_TRUE(store_->Lookup(1, keys.data(), 2, out.data(), 3, true).ok());
  EXPECT_EQ(out[0], 100.0f);
  EXPECT_EQ(out[3], 101.0f);
  EXPECT_EQ(out[2], 7.0f);
  std::map<Key, RowStats> seen;
  ASSERT_TRUE(store_->Scan(1, [&](Key k, const float*, const RowStats& s) {
    seen[k] = s;
    return true;
  }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[keys[0]].count, 1u);
  EXPECT_EQ(seen[keys[0]].last_step, 5u);
}

TEST_P(EmbeddingStoreTest, PutScanDropAndErrors) {
  ASSERT_TRUE(store_->CreateTable(Spec(2, 1, 0)).ok());
  EXPECT_TRUE(store_->CreateTable(Spec(2, 1, 0)).ok());
  EXPECT_EQ(store_->CreateTable(Spec(2, 3, 0)).code(), Status::Code::kFailedPrecondition);
  std::vector<Key> keys = {MakeKey(2, 1), MakeKey(2, 2), MakeKey(2, 3)};
  std::vector<float> rows = {1, 2, 3};
  ASSERT_TRUE(store_->Put(2, keys.data(), 3, rows.data(), nullptr).ok());
  float sum = 0;
  ASSERT_TRUE(store_->Scan(2, [&](Key, const float* r, const RowStats&) {
    sum += r[0];
    return true;
  }).ok());
  EXPECT_EQ(sum, 6.0f);
  std::vector<float> out(1);
  EXPECT_EQ(store_->Lookup(9, keys.data(), 1, out.data(), 1, true).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->Lookup(2, keys.data(), 1, out.data(), 5, true).code(),
            Status::Code::kInvalidArgument);
  ASSERT_TRUE(store_->DropTable(2).ok());
  EXPECT_EQ(store_->Lookup(2, keys.data(), 1, out.data(), 1, true).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->DropTable(2).code(), Status::Code::kNotFound);
  TableSpec bad = Spec(300, 4, 0);
  EXPECT_EQ(store_->CreateTable(bad).code(), Status::Code::kInvalidArgument);
}

TEST_P(EmbeddingStoreTest, ManyRowsSurviveGrowth) {
  ASSERT_TRUE(store_->CreateTable(Spec(0, 3, 0)).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 50000; ++i) keys.push_back(MakeKey(0, i * 7919));
  std::vector<float> rows(keys.size() * 3);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
  ASSERT_TRUE(store_->Put(0, keys.data(), keys.size(), rows.data(), nullptr).ok());
  std::vector<float> out(rows.size());
  ASSERT_TRUE(store_->Lookup(0, keys.data(), keys.size(), out.data(), 3, true).ok());
  EXPECT_EQ(out, rows);
}

TEST_P(EmbeddingStoreTest, ModifyCreatesMissingRowsFromInitialValue) {
  ASSERT_TRUE(store_->CreateTable(Spec(4, 2, 1)).ok());
  std::vector<Key> keys = {MakeKey(4, 5), MakeKey(4, 6)};
  std::vector<float> before(2 * 3);
  ASSERT_TRUE(store_->Lookup(4, keys.data(), 2, before.data(), 3, false).ok());
  std::vector<float> seen(2 * 3);
  ASSERT_TRUE(store_->Modify(4, keys.data(), 2, 1, [&](size_t i, float* row) {
    std::copy_n(row, 3, seen.data() + i * 3);
    row[1] += 1.0f;
  }).ok());
  EXPECT_EQ(seen, before);  // fn sees the key-seeded initial row
  std::vector<float> after(2 * 3);
  ASSERT_TRUE(store_->Lookup(4, keys.data(), 2, after.data(), 3, false).ok());
  EXPECT_EQ(after[1], before[1] + 1.0f);
  EXPECT_EQ(after[4], before[4] + 1.0f);
  EXPECT_EQ(store_->Stats(4)->rows, 2u);
}

TEST_P(EmbeddingStoreTest, EraseAndEvictByPolicy) {
  ASSERT_TRUE(store_->CreateTable(Spec(5, 2, 0)).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 100; ++i) keys.push_back(MakeKey(5, i));
  // Keys 0..49 updated at step 1; keys 50..99 at steps 1 and 10.
  ASSERT_TRUE(store_->Modify(5, keys.data(), 100, 1, [](size_t, float*) {}).ok());
  ASSERT_TRUE(store_->Modify(5, keys.data() + 50, 50, 10, [](size_t, float*) {}).ok());
  ASSERT_TRUE(store_->Erase(5, keys.data(), 10).ok());
  EXPECT_EQ(store_->Stats(5)->rows, 90u);
  EmbeddingStore::EvictPolicy p;
  p.now_step = 12;
  p.max_unseen_steps = 5;  // keys 10..49 last seen at step 1: stale
  auto gone = store_->Evict(5, p);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 40u);
  p.max_unseen_steps = 0;
  p.min_count = 3;  // the rest were seen twice: rare
  gone = store_->Evict(5, p);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 50u);
  EXPECT_EQ(store_->Stats(5)->rows, 0u);
}

TEST_P(EmbeddingStoreTest, ScanSeesEveryRowOnceWithStats) {
  ASSERT_TRUE(store_->CreateTable(Spec(6, 4, 4)).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back(MakeKey(6, i * 31 + 1));
  ASSERT_TRUE(store_->Modify(6, keys.data(), keys.size(), 3, [](size_t i, float* row) {
    row[0] = static_cast<float>(i);
    row[7] = -static_cast<float>(i);
  }).ok());
  ASSERT_TRUE(store_->CreateTable(Spec(7, 1, 0)).ok());  // a neighbour table stays apart
  Key other = MakeKey(7, 1);
  float v = 1;
  ASSERT_TRUE(store_->Put(7, &other, 1, &v, nullptr).ok());
  std::map<Key, std::pair<float, float>> seen;
  ASSERT_TRUE(store_->Scan(6, [&](Key k, const float* row, const RowStats& s) {
    EXPECT_EQ(s.count, 1u);
    EXPECT_EQ(s.last_step, 3u);
    EXPECT_TRUE(seen.emplace(k, std::make_pair(row[0], row[7])).second);
    return true;
  }).ok());
  ASSERT_EQ(seen.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(seen[keys[i]].first, static_cast<float>(i));
    EXPECT_EQ(seen[keys[i]].second, -static_cast<float>(i));
  }
  int visited = 0;
  ASSERT_TRUE(store_->Scan(6, [&](Key, const float*, const RowStats&) { return ++visited < 10; }).ok());
  EXPECT_EQ(visited, 10);
}

TEST_P(EmbeddingStoreTest, DropTableLeavesNothingBehind) {
  ASSERT_TRUE(store_->CreateTable(Spec(8, 2, 0)).ok());
  std::vector<Key> keys = {MakeKey(8, 1), MakeKey(8, 2)};
  ASSERT_TRUE(store_->Modify(8, keys.data(), 2, 1, [](size_t, float* r) { r[0] = 9; }).ok());
  ASSERT_TRUE(store_->DropTable(8).ok());
  ASSERT_TRUE(store_->CreateTable(Spec(8, 2, 0)).ok());
  EXPECT_EQ(store_->Stats(8)->rows, 0u);
  int rows = 0;
  ASSERT_TRUE(store_->Scan(8, [&](Key, const float*, const RowStats&) { return ++rows, true; }).ok());
  EXPECT_EQ(rows, 0);
}

TEST_P(EmbeddingStoreTest, RowsSurviveReopen) {
  if (!GetParam().persistent) GTEST_SKIP() << "the memory store is not persistent";
  std::vector<Key> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back(MakeKey(2, i * 7 + 3));
  std::vector<float> want(keys.size() * 3);
  ASSERT_TRUE(store_->CreateTable(Spec(2, 2, 1)).ok());
  ASSERT_TRUE(store_->Modify(2, keys.data(), keys.size(), 4, [](size_t i, float* r) {
    r[0] = static_cast<float>(i);
    r[2] = 1.5f;
  }).ok());
  ASSERT_TRUE(store_->Lookup(2, keys.data(), keys.size(), want.data(), 3, false).ok());
  ASSERT_TRUE(store_->Flush().ok());
  store_.reset();
  store_ = GetParam().open(dir_);
  ASSERT_NE(store_, nullptr);
  ASSERT_EQ(store_->Tables().size(), 1u);
  EXPECT_EQ(store_->Tables()[0].dim, 2);
  EXPECT_EQ(store_->Stats(2)->rows, keys.size());
  std::vector<float> got(want.size());
  ASSERT_TRUE(store_->Lookup(2, keys.data(), keys.size(), got.data(), 3, false).ok());
  EXPECT_EQ(got, want);
}

TEST_P(EmbeddingStoreTest, RewriteTableMapsEveryRowKeepsStatsAndResetsSlots) {
  // 5000 rows: more than the tiered store's DRAM tier, so the rewrite
  // streams through eviction and write-back.
  ASSERT_TRUE(store_->CreateTable(Spec(3, 4, 4)).ok());
  ASSERT_TRUE(store_->CreateTable(Spec(4, 2, 0)).ok());  // a neighbour table stays as it is
  std::vector<Key> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back(MakeKey(3, i * 13 + 5));
  ASSERT_TRUE(store_->Modify(3, keys.data(), keys.size(), 9, [](size_t i, float* row) {
    for (int c = 0; c < 4; ++c) row[c] = static_cast<float>(i) + 0.25f * c;
    for (int c = 4; c < 8; ++c) row[c] = 3.0f;
  }).ok());
  Key other = MakeKey(4, 1);
  float v[2] = {1, 2};
  ASSERT_TRUE(store_->Put(4, &other, 1, v, nullptr).ok());
  TableSpec wide = Spec(3, 2, 2);
  wide.init.slot_value = 0.5f;
  // new = (old[0] + old[3], old[1] * 2)
  ASSERT_TRUE(store_->RewriteTable(wide, [](Key, const float* o, float* n) {
    n[0] = o[0] + o[3];
    n[1] = o[1] * 2;
  }, dir_ + "/scratch").ok());
  ASSERT_EQ(store_->Tables().size(), 2u);
  for (const TableSpec& t : store_->Tables())
    if (t.table_id == 3) {
      EXPECT_EQ(t.dim, 2);
    }
  EXPECT_EQ(store_->Stats(3)->rows, keys.size());
  size_t seen = 0;
  ASSERT_TRUE(store_->Scan(3, [&](Key k, const float* row, const RowStats& s) {
    const auto it = std::find(keys.begin(), keys.end(), k);
    EXPECT_NE(it, keys.end());
    const float i = static_cast<float>(it - keys.begin());
    EXPECT_EQ(row[0], i + i + 0.75f);
    EXPECT_EQ(row[1], (i + 0.25f) * 2);
    EXPECT_EQ(row[2], 0.5f);  // fresh optimizer state
    EXPECT_EQ(row[3], 0.5f);
    EXPECT_EQ(s.count, 1u);   // stats kept
    EXPECT_EQ(s.last_step, 9u);
    ++seen;
    return true;
  }).ok());
  EXPECT_EQ(seen, keys.size());
  float got[2];
  ASSERT_TRUE(store_->Lookup(4, &other, 1, got, 2, false).ok());
  EXPECT_EQ(got[1], 2.0f);
  EXPECT_FALSE(store_->RewriteTable(Spec(9, 2, 0), [](Key, const float*, float*) {},
                                    dir_ + "/scratch").ok());  // no such table
}

TEST_P(EmbeddingStoreTest, UpdateRowsChangesOnlyTheRowsItReturns) {
  ASSERT_TRUE(store_->CreateTable(Spec(5, 3, 2)).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 4000; ++i) keys.push_back(MakeKey(5, i * 17 + 2));
  ASSERT_TRUE(store_->Modify(5, keys.data(), keys.size(), 6, [](size_t i, float* row) {
    for (int c = 0; c < 5; ++c) row[c] = static_cast<float>(i % 7) + c;
  }).ok());
  // Rows whose first float is 3: every float but the last becomes -1.
  auto changed = store_->UpdateRows(5, [](Key, const float* row, float* out) {
    if (row[0] != 3.0f) return false;
    for (int c = 0; c < 4; ++c) out[c] = -1.0f;
    out[4] = row[4];
    return true;
  }, dir_ + "/scratch");
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  size_t want = 0;
  for (size_t i = 0; i < keys.size(); ++i) want += i % 7 == 3;
  EXPECT_EQ(*changed, want);
  ASSERT_TRUE(store_->Scan(5, [&](Key k, const float* row, const RowStats& s) {
    const size_t i = std::find(keys.begin(), keys.end(), k) - keys.begin();
    EXPECT_EQ(s.last_step, 6u);
    if (i % 7 == 3) {
      EXPECT_EQ(row[0], -1.0f);
      EXPECT_EQ(row[3], -1.0f);
      EXPECT_EQ(row[4], 3.0f + 4);
    } else {
      EXPECT_EQ(row[0], static_cast<float>(i % 7));
    }
    return true;
  }).ok());
  EXPECT_EQ(store_->Stats(5)->rows, keys.size());
}

INSTANTIATE_TEST_SUITE_P(AllStores, EmbeddingStoreTest, ::testing::ValuesIn(testing::AllStoreKinds()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ctrps::storage
