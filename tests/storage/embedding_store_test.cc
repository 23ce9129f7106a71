// Conformance suite for EmbeddingStore, run against every implementation.
#include "storage/embedding_store.h"

#include <functional>
#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace ctrps::storage {
namespace {

using Factory = std::function<std::unique_ptr<EmbeddingStore>()>;

class EmbeddingStoreTest : public ::testing::TestWithParam<std::pair<const char*, Factory>> {
 protected:
  void SetUp() override { store_ = GetParam().second(); }
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
  auto other = GetParam().second();
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

INSTANTIATE_TEST_SUITE_P(AllStores, EmbeddingStoreTest,
                         ::testing::Values(std::make_pair("memory", Factory(NewMemoryStore))),
                         [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace ctrps::storage
