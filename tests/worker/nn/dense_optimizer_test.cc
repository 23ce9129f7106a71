// Dense optimizers: first steps against hand-computed values.
#include <cmath>

#include <gtest/gtest.h>

#include "worker/nn/dense_optimizer.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

std::unique_ptr<DenseOptimizer> Make(const DenseOptimizerOptions& o, size_t n) {
  auto opt = NewDenseOptimizer(o, n);
  EXPECT_TRUE(opt.ok()) << opt.status().ToString();
  return std::move(opt).value();
}

TEST(AdamTest, FirstStepsMatchHandComputation) {
  DenseOptimizerOptions o;
  o.learning_rate = 0.1f;
  auto adam = Make(o, 3);
  float w[3] = {1.0f, -2.0f, 0.5f};
  const float g1[3] = {0.1f, -0.2f, 0.0f};
  adam->Step(w, g1);
  // Step 1: m_hat = g, v_hat = g^2, so each weight moves by lr * sign(g).
  EXPECT_NEAR(w[0], 0.9f, 1e-6);
  EXPECT_NEAR(w[1], -1.9f, 1e-6);
  EXPECT_FLOAT_EQ(w[2], 0.5f);  // zero gradient: no move
  // Step 2, weight 0, g = 0.3: m = 0.9 * 0.01 + 0.1 * 0.3 = 0.039,
  // v = 0.999 * 1e-5 + 0.001 * 0.09 = 9.999e-5, m_hat = 0.039 / 0.19,
  // v_hat = 9.999e-5 / 0.001999; w = 0.9 - 0.1 * m_hat / sqrt(v_hat) = 0.808222.
  const float g2[3] = {0.3f, 0.1f, 0.0f};
  adam->Step(w, g2);
  EXPECT_NEAR(w[0], 0.808222f, 2e-6);
  EXPECT_EQ(adam->steps(), 2);
  auto state = adam->state();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_STREQ(state[0].name, "adam.m");
  EXPECT_STREQ(state[1].name, "adam.v");
  EXPECT_EQ(state[0].size, 3u);
  EXPECT_NEAR(state[0].data[0], 0.039f, 1e-7);
  EXPECT_NEAR(state[1].data[0], 9.999e-5f, 1e-8);  // 1 - 0.999f is not exact in float
}

TEST(AdamTest, L2AddsToTheGradient) {
  DenseOptimizerOptions o;
  o.learning_rate = 0.01f;
  o.l2 = 0.5f;
  auto adam = Make(o, 1);
  float w = 2.0f;
  const float g = -0.5f;  // g + l2 * w = 0.5: the decay flips the direction
  adam->Step(&w, &g);
  EXPECT_NEAR(w, 1.99f, 1e-6);
}

TEST(AdagradTest, FirstStepsMatchHandComputation) {
  DenseOptimizerOptions o;
  o.type = DenseOptimizerOptions::Type::kAdagrad;
  o.learning_rate = 0.5f;
  o.adagrad_initial_accumulator = 0.1f;
  auto ada = Make(o, 2);
  float w[2] = {1.0f, 1.0f};
  const float g[2] = {0.2f, 0.0f};
  ada->Step(w, g);
  // acc = 0.1 + 0.04 = 0.14; w = 1 - 0.5 * 0.2 / sqrt(0.14).
  EXPECT_NEAR(w[0], 1.0 - 0.1 / std::sqrt(0.14), 1e-6);
  EXPECT_FLOAT_EQ(w[1], 1.0f);
  ada->Step(w, g);
  // acc = 0.18.
  EXPECT_NEAR(w[0], 1.0 - 0.1 / std::sqrt(0.14) - 0.1 / std::sqrt(0.18), 1e-6);
  auto state = ada->state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_STREQ(state[0].name, "adagrad.accumulator");
  EXPECT_NEAR(state[0].data[0], 0.18f, 1e-7);
  EXPECT_NEAR(state[0].data[1], 0.1f, 1e-7);
}

TEST(SgdTest, StepWithL2) {
  DenseOptimizerOptions o;
  o.type = DenseOptimizerOptions::Type::kSgd;
  o.learning_rate = 0.1f;
  o.l2 = 0.01f;
  auto sgd = Make(o, 2);
  float w[2] = {2.0f, -1.0f};
  const float g[2] = {1.0f, 0.0f};
  sgd->Step(w, g);
  EXPECT_NEAR(w[0], 2.0f - 0.1f * (1.0f + 0.02f), 1e-6);
  EXPECT_NEAR(w[1], -1.0f - 0.1f * (-0.01f), 1e-7);
  EXPECT_TRUE(sgd->state().empty());
}

TEST(DenseOptimizerTest, ThreadedStepMatchesSingleThread) {
  const int saved = NumThreads();
  const size_t n = 100003;
  std::vector<float> g(n), w1(n), w2;
  for (size_t i = 0; i < n; ++i) {
    g[i] = std::sin(static_cast<float>(i));
    w1[i] = std::cos(static_cast<float>(i));
  }
  w2 = w1;
  DenseOptimizerOptions o;
  o.l2 = 1e-3f;
  auto a = Make(o, n), b = Make(o, n);
  SetNumThreads(1);
  a->Step(w1.data(), g.data());
  SetNumThreads(2);
  b->Step(w2.data(), g.data());
  SetNumThreads(saved);
  EXPECT_EQ(w1, w2);
}

TEST(DenseOptimizerTest, ValidateNamesTheBadField) {
  auto bad = [](auto tweak) {
    DenseOptimizerOptions o;
    tweak(o);
    return o.Validate();
  };
  using O = DenseOptimizerOptions;
  EXPECT_TRUE(bad([](O&) {}).ok());
  Status s = bad([](O& o) { o.learning_rate = 0; });
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("learning_rate"), std::string::npos) << s.message();
  EXPECT_NE(bad([](O& o) { o.l2 = -1; }).message().find("l2"), std::string::npos);
  auto names = [](const Status& st, const char* field) {
    return st.message().find(field) != std::string::npos;
  };
  EXPECT_TRUE(names(bad([](O& o) { o.adam_beta1 = 1.0f; }), "adam_beta1"));
  EXPECT_TRUE(names(bad([](O& o) { o.adam_beta2 = -0.1f; }), "adam_beta2"));
  EXPECT_TRUE(names(bad([](O& o) { o.adam_eps = 0; }), "adam_eps"));
  EXPECT_FALSE(bad([](O& o) {
                 o.type = O::Type::kAdagrad;
                 o.adagrad_initial_accumulator = -1;
               }).ok());
  EXPECT_FALSE(bad([](O& o) { o.learning_rate = std::nanf(""); }).ok());
  // Adam's betas do not matter to SGD.
  EXPECT_TRUE(bad([](O& o) {
                o.type = O::Type::kSgd;
                o.adam_beta1 = 2;
              }).ok());
  DenseOptimizerOptions o;
  o.learning_rate = -1;
  EXPECT_FALSE(NewDenseOptimizer(o, 10).ok());
}

}  // namespace
}  // namespace ctrps::worker
