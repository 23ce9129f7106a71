// The embedding gather (rows scaled by values into one matrix) and the
// per-unique-key scatter-add of gradients.
#include <gtest/gtest.h>

#include "tests/worker/nn/grad_check.h"
#include "worker/nn/embedding.h"
#include "worker/nn/rng.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using testing::CheckGradient;
using testing::Dot;
using testing::RandomMatrix;

// A batch whose field f has `uniques[f]` keys, example b using key
// (b * 7 + f) % uniques[f]; random rows and values.
SparseBatch MakeBatch(const EmbeddingInput& emb, int batch, const std::vector<int>& uniques,
                      uint64_t seed) {
  SparseBatch sb;
  sb.batch_size = batch;
  const int F = emb.num_fields();
  sb.fields.resize(F);
  sb.values = RandomMatrix(F, batch, seed, 2.0f);
  for (int f = 0; f < F; ++f) {
    FieldRows& fr = sb.fields[f];
    for (int u = 0; u < uniques[f]; ++u) fr.unique_keys.push_back(MakeKey(f, u));
    for (int b = 0; b < batch; ++b) fr.index.push_back((b * 7 + f) % uniques[f]);
    fr.rows = RandomMatrix(emb.RowWidth(f), uniques[f], seed + 1 + f);
  }
  return sb;
}

TEST(EmbeddingTest, LayoutAndRowWidths) {
  EmbeddingInput emb({4, 2, 3}, /*has_linear=*/true);
  EXPECT_EQ(emb.RowWidth(0), 5);
  EXPECT_EQ(emb.RowWidth(1), 3);
  EXPECT_EQ(emb.output_dim(), 9);
  EXPECT_EQ(emb.offset(2), 6);
  EmbeddingInput skip({4, 2, 3}, /*has_linear=*/false, /*first_field=*/1);
  EXPECT_EQ(skip.RowWidth(0), 4);
  EXPECT_EQ(skip.output_dim(), 5);
  EXPECT_EQ(skip.offset(1), 0);
}

TEST(EmbeddingTest, GatherScalesRowsByValues) {
  EmbeddingInput emb({3, 2}, /*has_linear=*/true);
  SparseBatch sb = MakeBatch(emb, 5, {2, 3}, 1);
  MatrixF x;
  VectorF linear;
  emb.Forward(sb, &x, &linear);
  ASSERT_EQ(x.rows(), 5);
  for (int b = 0; b < 5; ++b) {
    double lin = 0;
    for (int f = 0; f < 2; ++f) {
      const float v = sb.values(f, b);
      const auto row = sb.fields[f].rows.col(sb.fields[f].index[b]);
      lin += v * row(0);
      for (int k = 0; k < emb.emb_dim(f); ++k)
        EXPECT_FLOAT_EQ(x(emb.offset(f) + k, b), v * row(1 + k));
    }
    EXPECT_NEAR(linear[b], lin, 1e-6);
  }
}

TEST(EmbeddingTest, ScatterSumsRepeatedKeys) {
  // 64 examples over 2 keys in field 0 and 1 key in field 1: every gradient
  // row is a sum of many examples.
  EmbeddingInput emb({16, 16}, /*has_linear=*/true);
  SparseBatch sb = MakeBatch(emb, 64, {2, 1}, 2);
  MatrixF x;
  VectorF linear;
  emb.Forward(sb, &x, &linear);
  const MatrixF dx = RandomMatrix(x.rows(), 64, 3);
  const VectorF dlin = RandomMatrix(64, 1, 4).col(0);
  emb.Backward(&dx, &dlin, &sb);
  for (int f = 0; f < 2; ++f) {
    const FieldRows& fr = sb.fields[f];
    ASSERT_EQ(fr.grads.rows(), emb.RowWidth(f));
    ASSERT_EQ(fr.grads.cols(), static_cast<Eigen::Index>(fr.unique_keys.size()));
    Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(fr.grads.rows(), fr.grads.cols());
    for (int b = 0; b < 64; ++b) {
      const double v = sb.values(f, b);
      expected(0, fr.index[b]) += v * dlin[b];
      for (int k = 0; k < emb.emb_dim(f); ++k)
        expected(1 + k, fr.index[b]) += v * dx(emb.offset(f) + k, b);
    }
    EXPECT_TRUE(fr.grads.cast<double>().isApprox(expected, 1e-5)) << "field " << f;
  }
}

class EmbeddingGradTest : public ::testing::TestWithParam<std::vector<int>> {};  // dims

TEST_P(EmbeddingGradTest, GradientWithRespectToRows) {
  EmbeddingInput emb(GetParam(), /*has_linear=*/true);
  SparseBatch sb = MakeBatch(emb, 9, {2, 4, 3}, 5);
  MatrixF x;
  VectorF linear;
  const MatrixF gx = RandomMatrix(emb.output_dim(), 9, 6);
  const MatrixF gl = RandomMatrix(9, 1, 7);
  auto loss = [&] {
    emb.Forward(sb, &x, &linear);
    return Dot(gx, x) + Dot(gl, linear);
  };
  loss();
  const VectorF dlin = gl.col(0);
  emb.Backward(&gx, &dlin, &sb);
  for (int f = 0; f < 3; ++f) {
    FieldRows& fr = sb.fields[f];
    auto r = CheckGradient("rows of field " + std::to_string(f), fr.rows.data(), fr.grads.data(),
                           fr.rows.size(), loss);
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// Mixed dims (runtime path) and a common compiled dim.
INSTANTIATE_TEST_SUITE_P(Dims, EmbeddingGradTest,
                         ::testing::Values(std::vector<int>{3, 2, 4}, std::vector<int>{8, 8, 8}));

TEST(EmbeddingTest, SkippedFieldsGetZeroGradients) {
  EmbeddingInput emb({2, 2, 2}, /*has_linear=*/false, /*first_field=*/1);
  SparseBatch sb = MakeBatch(emb, 4, {2, 2, 2}, 8);
  MatrixF x;
  emb.Forward(sb, &x, nullptr);
  ASSERT_EQ(x.rows(), 4);
  EXPECT_FLOAT_EQ(x(0, 0), sb.values(1, 0) * sb.fields[1].rows(0, sb.fields[1].index[0]));
  const MatrixF dx = MatrixF::Ones(4, 4);
  emb.Backward(&dx, nullptr, &sb);
  EXPECT_EQ(sb.fields[0].grads, MatrixF::Zero(2, 2));
  EXPECT_NE(sb.fields[1].grads, MatrixF::Zero(2, 2));
}

TEST(EmbeddingTest, ThreadedScatterMatchesSingleThread) {
  const int saved = NumThreads();
  EmbeddingInput emb({4, 4, 4, 4}, true);
  SparseBatch sb = MakeBatch(emb, 500, {3, 50, 7, 500}, 9);
  MatrixF x[2];
  std::vector<MatrixF> grads[2];
  for (int t : {1, 2}) {
    SetNumThreads(t);
    VectorF linear;
    emb.Forward(sb, &x[t - 1], &linear);
    emb.Backward(&x[t - 1], &linear, &sb);
    for (const auto& fr : sb.fields) grads[t - 1].push_back(fr.grads);
  }
  SetNumThreads(saved);
  EXPECT_EQ(x[0], x[1]);
  EXPECT_EQ(grads[0], grads[1]);  // each field is summed by one thread, in order
}

TEST(EmbeddingDeathTest, RejectsMismatchedBatches) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // OpenMP threads may exist
  EmbeddingInput emb({3, 2}, true);
  SparseBatch sb = MakeBatch(emb, 4, {2, 2}, 1);
  MatrixF x;
  sb.fields[1].index[2] = 5;  // out of range
  EXPECT_DEATH(emb.Forward(sb, &x, nullptr), "field 1 example 2: index 5 of 2");
  sb = MakeBatch(emb, 4, {2, 2}, 1);
  sb.fields[0].rows.resize(3, 2);  // row width 3, expected 4
  EXPECT_DEATH(emb.Forward(sb, &x, nullptr), "field 0: rows is 3 x 2, expected 4 x 2");
}

}  // namespace
}  // namespace ctrps::worker
