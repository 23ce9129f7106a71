// Moments and eigensystems against closed forms.
#include <random>

#include <gtest/gtest.h>

#include "compression/moments.h"
#include "compression/pca.h"

namespace ctrps::compression {
namespace {

TEST(MomentsTest, MeanAndCovarianceMatchADirectComputation) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.5f, 2.0f);
  worker::MatrixF y(4, 50);
  for (int i = 0; i < y.size(); ++i) y.data()[i] = n(rng);
  Moments m(4);
  m.AddColumns(y.leftCols(20), 20);
  m.AddColumns(y.rightCols(30), 30);
  const Eigen::MatrixXd yd = y.cast<double>();
  const Eigen::VectorXd mu = yd.rowwise().mean();
  const Eigen::MatrixXd centred = yd.colwise() - mu;
  const Eigen::MatrixXd cov = centred * centred.transpose() / 50.0;
  EXPECT_EQ(m.count(), 50);
  EXPECT_LT((m.Mean() - mu).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((m.Covariance() - cov).cwiseAbs().maxCoeff(), 1e-10);
}

TEST(MomentsTest, WeightedColumnsEqualRepeatedColumns) {
  worker::MatrixF x(2, 3);
  x << 1, 2, 3, -1, 0.5f, 4;
  Moments weighted(2), repeated(2);
  weighted.AddWeightedColumns(x, {2, 0, 3});
  worker::MatrixF r(2, 5);
  r << x.col(0), x.col(0), x.col(2), x.col(2), x.col(2);
  repeated.AddColumns(r, 5);
  EXPECT_EQ(weighted.count(), 5);
  EXPECT_LT((weighted.Covariance() - repeated.Covariance()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(MomentsTest, FlatRoundTripAndMerge) {
  worker::MatrixF y = worker::MatrixF::Random(3, 8);
  Moments a(3), b(3), all(3);
  a.AddColumns(y.leftCols(5), 5);
  b.AddColumns(y.rightCols(3), 3);
  all.AddColumns(y, 8);
  std::vector<double> flat;
  b.AppendFlat(&flat);
  ASSERT_EQ(flat.size(), b.flat_size());
  Moments c(3);
  c.ReadFlat(flat.data());
  a.Merge(c);
  EXPECT_LT((a.Covariance() - all.Covariance()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(PcaTest, EigenvaluesDescendAndReconstruct) {
  Eigen::MatrixXd a = Eigen::MatrixXd::Random(5, 5);
  const Eigen::MatrixXd s = a * a.transpose();
  const Eigensystem e = SymmetricEigen(s);
  for (int i = 1; i < 5; ++i) EXPECT_GE(e.values[i - 1], e.values[i]);
  const Eigen::MatrixXd back = e.vectors * e.values.asDiagonal() * e.vectors.transpose();
  EXPECT_LT((back - s).cwiseAbs().maxCoeff(), 1e-10);
}

TEST(PcaTest, ChooseRankByVariance) {
  Eigen::VectorXd v(4);
  v << 5, 3, 1.5, 0.5;  // total 10
  EXPECT_EQ(ChooseRank(v, 2, 0), 2);
  EXPECT_EQ(ChooseRank(v, 9, 0), 4);
  EXPECT_EQ(ChooseRank(v, 0, 0.5), 1);
  EXPECT_EQ(ChooseRank(v, 0, 0.8), 2);
  EXPECT_EQ(ChooseRank(v, 0, 0.81), 3);
  EXPECT_EQ(ChooseRank(v, 0, 1.0), 4);
  EXPECT_DOUBLE_EQ(KeptFraction(v, 2), 0.8);
}

}  // namespace
}  // namespace ctrps::compression
