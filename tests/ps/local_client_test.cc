#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "ps/client.h"

namespace ctrps::ps {
namespace {

TEST(LocalClientTest, PullPushAppliesOptimizerToStoredRows) {
  auto store = storage::NewMemoryStore();
  auto client = NewLocalClient(store.get());
  TableConfig tc;
  tc.table_id = 4;
  tc.dim = 3;
  tc.zero_prefix = 3;  // rows start at zero
  tc.optimizer.type = SparseOptimizerType::kSGD;
  tc.optimizer.learning_rate = 0.5f;
  ASSERT_TRUE(client->DeclareTables({tc}).ok());
  EXPECT_EQ(client->Width(4), 3);
  std::vector<Key> keys = {MakeKey(4, 1), MakeKey(4, 2)};
  std::vector<float> rows(6, -1.0f);
  ASSERT_TRUE(client->Pull({{4, keys.data(), 2, rows.data()}}, true).ok());
  for (float v : rows) EXPECT_EQ(v, 0.0f);
  std::vector<float> grads = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(client->Push({{4, keys.data(), 2, grads.data()}}, 1).ok());
  ASSERT_TRUE(client->Pull({{4, keys.data(), 2, rows.data()}}, true).ok());
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(rows[i], -0.5f * grads[i]);
  std::vector<Key> bad = {MakeKey(5, 1)};
  EXPECT_EQ(client->Pull({{5, bad.data(), 1, rows.data()}}, true).code(), Status::Code::kNotFound);
}

TEST(LocalClientTest, LoadRowsThenScanRoundTrips) {
  auto store = storage::NewMemoryStore();
  auto client = NewLocalClient(store.get());
  TableConfig tc;
  tc.table_id = 2;
  tc.dim = 2;
  tc.optimizer.type = SparseOptimizerType::kAdagrad;
  tc.optimizer.adagrad_initial_acc = 0.1f;
  ASSERT_TRUE(client->DeclareTables({tc}).ok());
  std::vector<Key> keys = {MakeKey(2, 5), MakeKey(2, 6)};
  std::vector<float> rows = {1, 2, 3, 4};
  ASSERT_TRUE(client->LoadRows(2, keys.data(), 2, rows.data()).ok());
  std::map<Key, std::vector<float>> seen;
  ASSERT_TRUE(client->ScanRows(2, [&](Key k, const float* r) {
    seen[k] = {r[0], r[1]};
    return true;
  }).ok());
  EXPECT_EQ(seen[keys[0]], (std::vector<float>{1, 2}));
  EXPECT_EQ(seen[keys[1]], (std::vector<float>{3, 4}));
  float full[4];
  ASSERT_TRUE(store->Lookup(2, &keys[0], 1, full, 4, false).ok());
  EXPECT_FLOAT_EQ(full[2], 0.1f);  // optimizer state restarted at its initial value
  EXPECT_FALSE(client->ScanRows(9, [](Key, const float*) { return true; }).ok());
}

TEST(LocalClientTest, AdagradSlotsAreStoredWithRow) {
  auto store = storage::NewMemoryStore();
  auto client = NewLocalClient(store.get());
  TableConfig tc;
  tc.table_id = 0;
  tc.dim = 1;
  tc.zero_prefix = 1;
  tc.optimizer.type = SparseOptimizerType::kAdagrad;
  tc.optimizer.learning_rate = 1.0f;
  tc.optimizer.adagrad_initial_acc = 0.0f;
  tc.optimizer.adagrad_eps = 0.0f;
  ASSERT_TRUE(client->DeclareTables({tc}).ok());
  Key k = MakeKey(0, 9);
  float g = 2.0f;
  ASSERT_TRUE(client->Push({{0, &k, 1, &g}}, 1).ok());
  ASSERT_TRUE(client->Push({{0, &k, 1, &g}}, 2).ok());
  float row[2];
  ASSERT_TRUE(store->Lookup(0, &k, 1, row, 2, true).ok());
  EXPECT_FLOAT_EQ(row[1], 8.0f);
  EXPECT_FLOAT_EQ(row[0], -1.0f - 2.0f / std::sqrt(8.0f));
}

}  // namespace
}  // namespace ctrps::ps
