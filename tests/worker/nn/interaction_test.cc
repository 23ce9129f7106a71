// FM, FwFM, DCN-v2 cross layers and DLRM's dot interaction: forward values
// against explicit pairwise sums, gradients against finite differences.
#include <gtest/gtest.h>

#include "tests/worker/nn/grad_check.h"
#include "worker/nn/cross.h"
#include "worker/nn/dense_params.h"
#include "worker/nn/factorization.h"
#include "worker/nn/interaction.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using testing::CheckGradient;
using testing::Dot;
using testing::RandomMatrix;

// sum_{i<j} w(i, j) <e_i, e_j> for example b, in double.
template <typename W>
double PairSum(const MatrixF& x, int F, int d, int b, W w) {
  double s = 0;
  for (int i = 0; i < F; ++i)
    for (int j = i + 1; j < F; ++j) {
      double dot = 0;
      for (int k = 0; k < d; ++k) dot += double{x(i * d + k, b)} * x(j * d + k, b);
      s += w(i, j) * dot;
    }
  return s;
}

class FmTest : public ::testing::TestWithParam<int> {};  // the embedding dim

TEST_P(FmTest, SumSquareEqualsPairwiseSum) {
  const int F = 5, d = GetParam(), B = 6;
  const MatrixF x = RandomMatrix(F * d, B, 1);
  FmInteraction fm(F, d);
  VectorF out;
  fm.Forward(x, &out);
  for (int b = 0; b < B; ++b)
    EXPECT_NEAR(out[b], PairSum(x, F, d, b, [](int, int) { return 1.0; }), 1e-5) << b;
}

TEST_P(FmTest, GradientMatchesFiniteDifferences) {
  const int F = 4, d = GetParam(), B = 5;
  MatrixF x = RandomMatrix(F * d, B, 2);
  const MatrixF g = RandomMatrix(B, 1, 3);
  FmInteraction fm(F, d);
  VectorF out;
  auto loss = [&] {
    fm.Forward(x, &out);
    return Dot(g, out);
  };
  loss();
  MatrixF dx = MatrixF::Zero(F * d, B);
  fm.Backward(x, g.col(0), &dx);
  auto r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Dims, FmTest, ::testing::Values(3, 16));

class FwFmTest : public ::testing::TestWithParam<int> {};  // the embedding dim

TEST_P(FwFmTest, EqualsTheSymmetrisedPairwiseSum) {
  const int F = 6, d = GetParam(), B = 5;
  DenseParamSet ps;
  FwFmInteraction fwfm(&ps, "r", F, d);
  ps.Allocate(3);
  MapF r = ps.value(0);
  r = RandomMatrix(F, F, 4);  // not symmetric, non-zero diagonal
  const MatrixF x = RandomMatrix(F * d, B, 5);
  VectorF out;
  fwfm.Forward(x, &out);
  for (int b = 0; b < B; ++b) {
    const double expected =
        PairSum(x, F, d, b, [&](int i, int j) { return 0.5 * (r(i, j) + r(j, i)); });
    EXPECT_NEAR(out[b], expected, 1e-4) << b;
  }
  // R and R^T, and any diagonal, give the same model.
  const MatrixF rt = r.transpose();
  r = rt;
  r.diagonal().setConstant(7.0f);
  VectorF out_t;
  fwfm.Forward(x, &out_t);
  EXPECT_TRUE(out_t.isApprox(out, 1e-5f));
  const MatrixF rs = fwfm.SymmetricR();
  EXPECT_TRUE(rs.isApprox(rs.transpose()));
  EXPECT_EQ(rs.diagonal().cwiseAbs().maxCoeff(), 0.0f);
}

TEST_P(FwFmTest, WithSymmetricREqualsTheUpperTriangleSum) {
  const int F = 5, d = GetParam(), B = 3;
  DenseParamSet ps;
  FwFmInteraction fwfm(&ps, "r", F, d);
  ps.Allocate(3);
  MatrixF sym = RandomMatrix(F, F, 6);
  sym = (sym + sym.transpose()).eval();
  ps.value(0) = sym;
  const MatrixF x = RandomMatrix(F * d, B, 7);
  VectorF out;
  fwfm.Forward(x, &out);
  for (int b = 0; b < B; ++b)
    EXPECT_NEAR(out[b], PairSum(x, F, d, b, [&](int i, int j) { return sym(i, j); }), 1e-4);
}

TEST_P(FwFmTest, GradientsMatchFiniteDifferences) {
  const int F = 5, d = GetParam(), B = 4;
  DenseParamSet ps;
  FwFmInteraction fwfm(&ps, "r", F, d);
  ps.Allocate(3);
  MatrixF x = RandomMatrix(F * d, B, 8);
  const MatrixF g = RandomMatrix(B, 1, 9);
  VectorF out;
  auto loss = [&] {
    fwfm.Forward(x, &out);
    return Dot(g, out);
  };
  loss();
  MatrixF dx = MatrixF::Zero(F * d, B);
  fwfm.Backward(g.col(0), &dx);
  const MatrixF dr = ps.grad(0);
  EXPECT_TRUE(dr.isApprox(dr.transpose()));
  EXPECT_EQ(dr.diagonal().cwiseAbs().maxCoeff(), 0.0f);
  auto r = CheckGradient("R", ps.value(0).data(), dr.data(), dr.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Dims, FwFmTest, ::testing::Values(3, 8, 16));

TEST(FwFmThreadsTest, ThreadedMatchesSingleThread) {
  const int saved = NumThreads();
  const int F = 7, d = 16, B = 400;
  DenseParamSet ps;
  FwFmInteraction fwfm(&ps, "r", F, d);
  ps.Allocate(3);
  const MatrixF x = RandomMatrix(F * d, B, 1);
  const VectorF g = RandomMatrix(B, 1, 2).col(0);
  VectorF out[2];
  MatrixF dx[2], dr[2];
  for (int t : {1, 2}) {
    SetNumThreads(t);
    fwfm.Forward(x, &out[t - 1]);
    dx[t - 1] = MatrixF::Zero(F * d, B);
    ps.grad(0).setZero();
    fwfm.Backward(g, &dx[t - 1]);
    dr[t - 1] = ps.grad(0);
  }
  SetNumThreads(saved);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(dx[0], dx[1]);
  EXPECT_TRUE(dr[0].isApprox(dr[1], 1e-5f));
}

class CrossTest : public ::testing::TestWithParam<int> {};  // rank; 0 = full

TEST_P(CrossTest, ForwardMatchesTheFormula) {
  const int D = 6, B = 4, rank = GetParam();
  DenseParamSet ps;
  CrossLayer c(&ps, "cross.0", D, rank);
  ps.Allocate(1);
  ps.value(ps.infos().size() - 1) = RandomMatrix(D, 1, 2);  // bias
  const MatrixF x0 = RandomMatrix(D, B, 3), xl = RandomMatrix(D, B, 4);
  MatrixF out;
  c.Forward(x0, xl, &out);
  const MatrixF w =
      rank == 0 ? MatrixF(ps.value(0)) : MatrixF(ps.value(0) * ps.value(1).transpose());
  const MatrixF z = (w * xl).colwise() + ps.value(ps.infos().size() - 1).col(0);
  EXPECT_TRUE(out.isApprox(x0.cwiseProduct(z) + xl, 1e-5f));
}

TEST_P(CrossTest, StackGradientsMatchFiniteDifferences) {
  // x1 = c0(x0, x0), x2 = c1(x0, x1): x0 feeds every layer.
  const int D = 5, B = 3, rank = GetParam();
  DenseParamSet ps;
  CrossLayer c0(&ps, "cross.0", D, rank), c1(&ps, "cross.1", D, rank);
  ps.Allocate(2);
  for (size_t i = 0; i < ps.infos().size(); ++i) {
    const DenseParamInfo& p = ps.infos()[i];
    ps.value(static_cast<int>(i)) = RandomMatrix(p.rows, p.cols, 10 + i, 0.5f);
  }
  MatrixF x0 = RandomMatrix(D, B, 5);
  const MatrixF g = RandomMatrix(D, B, 6);
  MatrixF x1, x2;
  auto loss = [&] {
    c0.Forward(x0, x0, &x1);
    c1.Forward(x0, x1, &x2);
    return Dot(g, x2);
  };
  loss();
  MatrixF dx0 = MatrixF::Zero(D, B), dx1, dxl0;
  c1.Backward(x0, x1, g, &dx0, &dx1);
  c0.Backward(x0, x0, dx1, &dx0, &dxl0);
  dx0 += dxl0;
  auto r = CheckGradient("params", ps.values(), ps.grads(), ps.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  r = CheckGradient("x0", x0.data(), dx0.data(), x0.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ranks, CrossTest, ::testing::Values(0, 2));

class DotInteractionTest : public ::testing::TestWithParam<int> {};  // the vector dim

TEST_P(DotInteractionTest, PairsInUpperTriangleOrder) {
  const int n = 4, d = GetParam(), B = 2;
  const MatrixF z = RandomMatrix(n * d, B, 1);
  DotInteraction dot(n, d);
  MatrixF p;
  dot.Forward(z, &p);
  ASSERT_EQ(p.rows(), 6);
  for (int b = 0; b < B; ++b) {
    int q = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j, ++q)
        EXPECT_NEAR(p(q, b), z.col(b).segment(i * d, d).dot(z.col(b).segment(j * d, d)), 1e-6);
  }
}

TEST_P(DotInteractionTest, GradientMatchesFiniteDifferences) {
  const int n = 4, d = GetParam(), B = 3;
  MatrixF z = RandomMatrix(n * d, B, 2);
  DotInteraction dot(n, d);
  const MatrixF g = RandomMatrix(dot.num_pairs(), B, 3);
  MatrixF p, dz;
  auto loss = [&] {
    dot.Forward(z, &p);
    return Dot(g, p);
  };
  loss();
  dot.Backward(z, g, &dz);
  auto r = CheckGradient("z", z.data(), dz.data(), z.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Dims, DotInteractionTest, ::testing::Values(3, 16));

}  // namespace
}  // namespace ctrps::worker
