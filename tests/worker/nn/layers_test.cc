// Linear, ReLU, Dropout, the fused MLP and the loss: forward values against
// closed forms, gradients against finite differences.
#include <cmath>

#include <gtest/gtest.h>

#include "tests/worker/nn/grad_check.h"
#include "worker/nn/dense_params.h"
#include "worker/nn/layers.h"
#include "worker/nn/loss.h"
#include "worker/nn/mlp.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using testing::CheckGradient;
using testing::Dot;
using testing::RandomMatrix;

// Values bounded away from 0, so a ReLU is never within a step of its kink.
MatrixF AwayFromZero(MatrixF m, float margin = 0.2f) {
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    float& v = m.data()[i];
    v = v >= 0 ? v + margin : v - margin;
  }
  return m;
}

TEST(LinearTest, ForwardIsAffine) {
  DenseParamSet ps;
  Linear fc(&ps, "fc", 5, 3, ParamInit::Xavier());
  ps.Allocate(7);
  fc.bias() = RandomMatrix(3, 1, 1);
  const MatrixF x = RandomMatrix(5, 4, 2);
  MatrixF y;
  fc.Forward(x, &y);
  const MatrixF expected = (fc.weight() * x).colwise() + fc.bias().col(0);
  EXPECT_TRUE(y.isApprox(expected, 1e-6f));
}

TEST(LinearTest, GradientsMatchFiniteDifferences) {
  DenseParamSet ps;
  Linear fc(&ps, "fc", 5, 3, ParamInit::Xavier());
  ps.Allocate(7);
  fc.bias() = RandomMatrix(3, 1, 1);
  MatrixF x = RandomMatrix(5, 4, 2);
  const MatrixF g = RandomMatrix(3, 4, 3);
  MatrixF y, dx;
  auto loss = [&] {
    fc.Forward(x, &y);
    return Dot(g, y);
  };
  loss();
  fc.Backward(x, g, &dx);
  auto r = CheckGradient("params", ps.values(), ps.grads(), ps.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(GradCheckTest, CatchesWrongGradients) {
  // Negative control: the checker must reject a gradient that is off in one
  // coordinate, one scaled by a few percent, and one with a flipped sign.
  DenseParamSet ps;
  Linear fc(&ps, "fc", 4, 3, ParamInit::Xavier());
  ps.Allocate(3);
  const MatrixF x = RandomMatrix(4, 5, 2);
  const MatrixF g = RandomMatrix(3, 5, 3);
  MatrixF y;
  auto loss = [&] {
    fc.Forward(x, &y);
    return Dot(g, y);
  };
  loss();
  fc.Backward(x, g, nullptr);
  const MatrixF right = fc.weight_grad();
  ASSERT_TRUE(CheckGradient("w", fc.weight().data(), right.data(), right.size(), loss).ok);

  MatrixF one_off = right;
  one_off(1, 2) += 0.05f;
  auto r = CheckGradient("w", fc.weight().data(), one_off.data(), one_off.size(), loss);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("w[7]"), std::string::npos) << r.message;  // (1, 2) column-major

  const MatrixF scaled = 1.03f * right;
  EXPECT_FALSE(CheckGradient("w", fc.weight().data(), scaled.data(), scaled.size(), loss).ok);
  const MatrixF flipped = -right;
  EXPECT_FALSE(CheckGradient("w", fc.weight().data(), flipped.data(), flipped.size(), loss).ok);
}

TEST(ReluTest, ForwardAndGradient) {
  MatrixF x = AwayFromZero(RandomMatrix(6, 5, 4));
  const MatrixF g = RandomMatrix(6, 5, 5);
  MatrixF y, dx;
  ReLU::Forward(x, &y);
  EXPECT_TRUE(y.isApprox(x.cwiseMax(0.0f)));
  ReLU::Backward(y, g, &dx);
  auto loss = [&] {
    MatrixF out;
    ReLU::Forward(x, &out);
    return Dot(g, out);
  };
  auto r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ((dx.array() != 0).count(), (x.array() > 0).count());
}

TEST(DropoutTest, InvertedScalingAndRate) {
  Dropout drop(0.25f, /*seed=*/11);
  const MatrixF x = MatrixF::Ones(200, 100);
  MatrixF y;
  drop.Forward(x, /*training=*/true, &y);
  int kept = 0;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    const float v = y.data()[i];
    ASSERT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.75f) < 1e-6f) << v;
    kept += v != 0.0f;
  }
  // 20000 Bernoulli(0.75) draws: 15000 +- 61 (1 sd).
  EXPECT_NEAR(kept, 15000, 400);
  EXPECT_NEAR(y.mean(), 1.0, 0.03);  // inverted dropout keeps the expectation
  drop.Forward(x, /*training=*/false, &y);
  EXPECT_EQ(y, x);
}

TEST(DropoutTest, MasksAreDeterministic) {
  const MatrixF x = RandomMatrix(30, 20, 1);
  Dropout a(0.5f, 3), b(0.5f, 3), other_seed(0.5f, 4), other_stream(0.5f, 3, 1);
  MatrixF ya, yb, yc, yd;
  a.Forward(x, true, &ya);
  b.Forward(x, true, &yb);
  other_seed.Forward(x, true, &yc);
  other_stream.Forward(x, true, &yd);
  EXPECT_EQ(ya, yb);
  EXPECT_NE(ya, yc);
  EXPECT_NE(ya, yd);
  // The next call draws a new mask; restoring the counter replays the old one.
  a.Forward(x, true, &yb);
  EXPECT_NE(ya, yb);
  EXPECT_EQ(a.calls(), 2u);
  a.set_calls(0);
  a.Forward(x, true, &yb);
  EXPECT_EQ(ya, yb);
}

TEST(DropoutTest, GradientUsesTheForwardMask) {
  Dropout drop(0.4f, 5);
  MatrixF x = RandomMatrix(8, 6, 2);
  const MatrixF g = RandomMatrix(8, 6, 3);
  MatrixF y, dx;
  auto loss = [&] {
    drop.set_calls(0);
    drop.Forward(x, true, &y);
    return Dot(g, y);
  };
  loss();
  drop.Backward(g, &dx);
  auto r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT((dx.array() == 0).count(), 0);
}

// Biases of ReLU layers to +-1 and weights to at most 0.3 / fan_in in
// magnitude: every pre-activation is then within 1 +- 0.5 of zero's far side
// for inputs up to ~1.5, so a finite-difference step never crosses a kink.
void ShapeMlpForReluSafety(DenseParamSet* ps) {
  for (size_t i = 0; i < ps->infos().size(); ++i) {
    const DenseParamInfo& p = ps->infos()[i];
    MapF v = ps->value(static_cast<int>(i));
    if (p.name.find(".bias") != std::string::npos) {
      for (int r = 0; r < p.rows; ++r) v(r, 0) = (r % 2 == 0) ? 1.0f : -1.0f;
    } else {
      v *= 0.3f / (p.cols * std::max(1e-6f, v.cwiseAbs().maxCoeff()));
    }
  }
}

void CheckMlpGradients(float dropout, bool relu_last, int batch) {
  DenseParamSet ps;
  Mlp mlp(&ps, "mlp", {6, 5, 4, 3}, dropout, /*seed=*/9, relu_last);
  ps.Allocate(21);
  ShapeMlpForReluSafety(&ps);
  MatrixF x = RandomMatrix(6, batch, 1);
  const MatrixF g = RandomMatrix(3, batch, 2);
  MatrixF dx;
  auto loss = [&] {
    mlp.set_dropout_calls(0);
    mlp.Forward(x, /*training=*/true);
    return Dot(g, mlp.output());
  };
  loss();
  std::fill_n(ps.grads(), ps.size(), 0.0f);
  mlp.Backward(x, g, &dx);
  auto r = CheckGradient("params", ps.values(), ps.grads(), ps.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  r = CheckGradient("x", x.data(), dx.data(), x.size(), loss);
  EXPECT_TRUE(r.ok) << r.message;
  // Both ReLU branches are exercised.
  EXPECT_GT((mlp.output().array() != 0).count(), 0);
}

TEST(MlpTest, GradientsMatchFiniteDifferences) { CheckMlpGradients(0.0f, false, 7); }
TEST(MlpTest, GradientsWithDropout) { CheckMlpGradients(0.3f, false, 7); }
TEST(MlpTest, GradientsWithReluOnTheLastLayer) { CheckMlpGradients(0.0f, true, 7); }

TEST(MlpTest, MatchesTheLayerByLayerComposition) {
  DenseParamSet ps;
  Mlp mlp(&ps, "mlp", {6, 5, 2}, 0.0f, 1, false);
  ps.Allocate(3);
  ps.value(1) = RandomMatrix(5, 1, 8);  // mlp.0.bias
  const MatrixF x = RandomMatrix(6, 9, 4);
  mlp.Forward(x, false);
  MatrixF h, a, y;
  mlp.layer(0).Forward(x, &h);
  ReLU::Forward(h, &a);
  mlp.layer(1).Forward(a, &y);
  EXPECT_TRUE(mlp.output().isApprox(y, 1e-6f));
  EXPECT_EQ(ps.infos()[0].name, "mlp.0.weight");
  EXPECT_EQ(ps.infos()[3].name, "mlp.1.bias");
  EXPECT_DOUBLE_EQ(mlp.FlopsPerExample(), 2.0 * (6 * 5 + 5 * 2));
}

// The batch split across threads (per-thread GEMMs, summed partial weight
// gradients) must give the single-thread results.
TEST(MlpTest, ThreadedMatchesSingleThread) {
  const int saved = NumThreads();
  DenseParamSet ps;
  Mlp mlp(&ps, "mlp", {12, 10, 8, 1}, 0.2f, 5, false);
  ps.Allocate(3);
  const MatrixF x = RandomMatrix(12, 700, 4);
  const MatrixF g = RandomMatrix(1, 700, 5);
  MatrixF out[2], dx[2], grads[2];
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    mlp.set_dropout_calls(0);
    mlp.Forward(x, true);
    std::fill_n(ps.grads(), ps.size(), 0.0f);
    mlp.Backward(x, g, &dx[threads - 1]);
    out[threads - 1] = mlp.output();
    grads[threads - 1] = Eigen::Map<MatrixF>(ps.grads(), ps.size(), 1);
  }
  SetNumThreads(saved);
  // Not bit-identical: Eigen's k-blocking depends on the GEMM's width.
  EXPECT_TRUE(out[0].isApprox(out[1], 1e-6f));
  EXPECT_TRUE(dx[0].isApprox(dx[1], 1e-6f));
  EXPECT_TRUE(grads[0].isApprox(grads[1], 1e-5f));
}

TEST(MlpTest, ThreadedGradientsMatchFiniteDifferences) {
  const int saved = NumThreads();
  SetNumThreads(2);
  CheckMlpGradients(0.25f, false, 300);
  CheckMlpGradients(0.0f, true, 300);
  SetNumThreads(saved);
}

TEST(LossTest, SigmoidCrossEntropyValues) {
  VectorF z(5), y(5), dz;
  z << 0.0f, 2.0f, -3.0f, 60.0f, -60.0f;
  y << 1.0f, 0.0f, 1.0f, 1.0f, 1.0f;
  const double loss = SigmoidCrossEntropyWithLogits(z, y, &dz);
  auto ce = [](double z, double y) {
    const double p = 1.0 / (1.0 + std::exp(-z));
    return -(y * std::log(p) + (1 - y) * std::log1p(-p));
  };
  // z = -60 with y = 1: the loss is 60, not inf (the stable form).
  const double expected = (ce(0, 1) + ce(2, 0) + ce(-3, 1) + 0.0 + 60.0) / 5;
  EXPECT_NEAR(loss, expected, 1e-5);
  EXPECT_NEAR(dz[0], (0.5 - 1) / 5, 1e-7);
  EXPECT_NEAR(dz[1], (1 / (1 + std::exp(-2.0)) - 0) / 5, 1e-7);
  EXPECT_NEAR(dz[3], 0.0, 1e-7);
  EXPECT_NEAR(dz[4], -1.0 / 5, 1e-7);
  EXPECT_TRUE(std::isfinite(loss));
}

TEST(LossTest, SigmoidCrossEntropyGradient) {
  MatrixF z = RandomMatrix(7, 1, 3, 4.0f);
  VectorF y(7);
  y << 1, 0, 0, 1, 1, 0, 1;
  VectorF dz;
  SigmoidCrossEntropyWithLogits(z.col(0), y, &dz);
  auto loss = [&] { return SigmoidCrossEntropyWithLogits(z.col(0), y, nullptr); };
  testing::GradCheckOptions o;
  o.step = 1e-3f;
  o.abs_tol = 1e-4;
  auto r = CheckGradient("z", z.data(), dz.data(), z.size(), loss, o);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace ctrps::worker
