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

}  // namespace
}  // namespace ctrps::worker
