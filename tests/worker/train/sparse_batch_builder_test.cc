#include "worker/train/sparse_batch_builder.h"

#include <gtest/gtest.h>

namespace ctrps::worker {
namespace {

TEST(SparseBatchBuilderTest, DedupsPerFieldAndKeepsIndices) {
  Batch b;
  b.num_fields = 2;
  // Three examples; field 0 keys: A, B, A; field 1 keys: C, C, C.
  Key A = MakeKey(0, 1), B = MakeKey(0, 2), C = MakeKey(1, 1);
  b.keys = {A, C, B, C, A, C};
  b.values = {1, 2, 1, 3, 1, 4};
  b.labels = {0, 1, 0};
  SparseBatchBuilder builder({3, 5});
  SparseBatch sb;
  builder.Build(b, &sb);
  ASSERT_EQ(sb.fields.size(), 2u);
  EXPECT_EQ(sb.fields[0].unique_keys, (std::vector<Key>{A, B}));
  EXPECT_EQ(sb.fields[0].index, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(sb.fields[1].unique_keys, (std::vector<Key>{C}));
  EXPECT_EQ(sb.fields[1].index, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(sb.fields[0].rows.rows(), 3);
  EXPECT_EQ(sb.fields[0].rows.cols(), 2);
  EXPECT_EQ(sb.fields[1].grads.rows(), 5);
  EXPECT_EQ(sb.values(1, 2), 4.0f);
  EXPECT_EQ(sb.values(1, 0), 2.0f);
  // Reuse with a smaller batch shrinks everything.
  b.keys.resize(2);
  b.values.resize(2);
  b.labels.resize(1);
  builder.Build(b, &sb);
  EXPECT_EQ(sb.batch_size, 1);
  EXPECT_EQ(sb.fields[0].unique_keys.size(), 1u);
  EXPECT_EQ(sb.fields[0].index.size(), 1u);
}

// With a shard order, each field's unique keys come shard by shard (first
// seen first within a shard) and every index still names its own key.
TEST(SparseBatchBuilderTest, ShardOrderKeepsEveryIndexOnItsKey) {
  constexpr int F = 3, B = 500;
  constexpr uint32_t V = 8;
  Batch b;
  b.num_fields = F;
  for (int i = 0; i < B; ++i) {
    for (int f = 0; f < F; ++f) b.keys.push_back(MakeKey(f, (i * 7919 + f) % (37 + 50 * f)));
    for (int f = 0; f < F; ++f) b.values.push_back(1);
    b.labels.push_back(i % 2);
  }
  SparseBatchBuilder plain({4, 4, 4}), ordered({4, 4, 4});
  ordered.SetShardOrder(V);
  SparseBatch p, o;
  plain.Build(b, &p);
  ordered.Build(b, &o);
  bool moved = false;
  for (int f = 0; f < F; ++f) {
    const auto& keys = o.fields[f].unique_keys;
    ASSERT_EQ(keys.size(), p.fields[f].unique_keys.size());
    for (size_t u = 1; u < keys.size(); ++u)
      EXPECT_LE(VirtualShardOf(keys[u - 1], V), VirtualShardOf(keys[u], V));
    // Within a shard, first-seen order (the plain builder's order).
    std::vector<Key> expect;
    for (uint32_t v = 0; v < V; ++v)
      for (Key k : p.fields[f].unique_keys)
        if (VirtualShardOf(k, V) == v) expect.push_back(k);
    EXPECT_EQ(keys, expect);
    moved |= keys != p.fields[f].unique_keys;
    for (int i = 0; i < B; ++i)
      EXPECT_EQ(keys[o.fields[f].index[i]], b.keys[static_cast<size_t>(i) * F + f]);
  }
  EXPECT_TRUE(moved) << "the keys were already in shard order";
}

}  // namespace
}  // namespace ctrps::worker
