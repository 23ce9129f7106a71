#include "ps/sparse_optimizer.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "storage/row_init.h"

namespace ctrps::ps {
namespace {

std::unique_ptr<SparseOptimizer> Make(SparseOptimizerOptions o) {
  auto r = NewSparseOptimizer(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(SparseOptimizerTest, SgdWithL2) {
  SparseOptimizerOptions o;
  o.type = SparseOptimizerType::kSGD;
  o.learning_rate = 0.1f;
  o.l2 = 0.5f;
  auto opt = Make(o);
  EXPECT_EQ(opt->SlotFloats(3), 0);
  float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 1.0f};
  opt->Apply(w, g, 2);
  EXPECT_FLOAT_EQ(w[0], 1.0f - 0.1f * (0.5f + 0.5f));
  EXPECT_FLOAT_EQ(w[1], -2.0f - 0.1f * (1.0f - 1.0f));
}

TEST(SparseOptimizerTest, AdagradAccumulates) {
  SparseOptimizerOptions o;
  o.type = SparseOptimizerType::kAdagrad;
  o.learning_rate = 0.1f;
  o.adagrad_initial_acc = 1.0f;
  o.adagrad_eps = 0.0f;
  auto opt = Make(o);
  ASSERT_EQ(opt->SlotFloats(1), 1);
  float row[2] = {0.0f, 1.0f};  // w, acc
  float g = 2.0f;
  opt->Apply(row, &g, 1);
  EXPECT_FLOAT_EQ(row[1], 5.0f);
  EXPECT_FLOAT_EQ(row[0], -0.1f * 2.0f / std::sqrt(5.0f));
  opt->Apply(row, &g, 1);
  EXPECT_FLOAT_EQ(row[1], 9.0f);
}

TEST(SparseOptimizerTest, AdamFirstStepIsLrTimesSign) {
  SparseOptimizerOptions o;
  o.type = SparseOptimizerType::kAdam;
  o.learning_rate = 0.01f;
  auto opt = Make(o);
  ASSERT_EQ(opt->SlotFloats(2), 5);
  std::vector<float> row(2 + 5, 0.0f);
  row[0] = 1.0f;
  float g[2] = {3.0f, -0.001f};
  opt->Apply(row.data(), g, 2);
  // Bias-corrected first Adam step moves each weight by ~lr * sign(g).
  EXPECT_NEAR(row[0], 1.0f - 0.01f, 1e-5);
  EXPECT_NEAR(row[1], 0.01f, 1e-4);
  EXPECT_EQ(row[6], 1.0f);  // the row's own step count
  opt->Apply(row.data(), g, 2);
  EXPECT_EQ(row[6], 2.0f);
}

TEST(SparseOptimizerTest, FtrlL1GivesExactZeros) {
  SparseOptimizerOptions o;
  o.type = SparseOptimizerType::kFTRL;
  o.ftrl_alpha = 0.1f;
  o.ftrl_beta = 1.0f;
  o.ftrl_l1 = 1.0f;
  auto opt = Make(o);
  std::vector<float> row(3, 0.0f);
  float small = 0.5f;
  opt->Apply(row.data(), &small, 1);
  EXPECT_EQ(row[0], 0.0f);  // |z| = 0.5 <= l1
  float big = 3.0f;
  opt->Apply(row.data(), &big, 1);
  // z = 3.5 - sigma*0, n = 9.25: w = -(3.5 - 1) / ((1 + sqrt(9.25)) / 0.1)
  EXPECT_NEAR(row[0], -2.5f / ((1.0f + std::sqrt(9.25f)) / 0.1f), 1e-6);
}

// A new row keeps its initial vector under FTRL: its z starts where the
// closed form gives that vector back, so a zero gradient leaves it as it is
// and a small one moves it a little (before, the first update set w from
// the gradient alone: the initial embedding was wiped, FM trained like LR).
TEST(SparseOptimizerTest, FtrlNewRowKeepsItsInitialVector) {
  for (float l1 : {0.0f, 0.01f}) {
    SparseOptimizerOptions o;
    o.type = SparseOptimizerType::kFTRL;
    o.ftrl_alpha = 0.05f;
    o.ftrl_beta = 1.0f;
    o.ftrl_l1 = l1;
    o.ftrl_l2 = 0.1f;
    auto opt = Make(o);
    const int dim = 4;
    storage::RowInitOptions init;
    init.scale = 0.5f;
    opt->ConfigureInit(&init);
    std::vector<float> row(dim + opt->SlotFloats(dim));
    storage::InitRow(init, MakeKey(1, 77), dim, opt->SlotFloats(dim), row.data());
    const std::vector<float> w0(row.begin(), row.begin() + dim);
    std::vector<float> zero(dim, 0.0f);
    opt->Apply(row.data(), zero.data(), dim);
    for (int i = 0; i < dim; ++i) EXPECT_FLOAT_EQ(row[i], w0[i]) << "l1 " << l1 << " float " << i;
    std::vector<float> g(dim, 1e-3f);
    opt->Apply(row.data(), g.data(), dim);
    for (int i = 0; i < dim; ++i) {
      // One FTRL step from w0 (l1 = 0: w0 - g * alpha / (beta + |g|) with l2 folded in).
      EXPECT_NEAR(row[i], w0[i], 1e-4) << "l1 " << l1;
      EXPECT_LT(row[i], w0[i]);
    }
  }
}

// Adagrad's initial state keeps a new row's vector too: the accumulator
// starts at adagrad_initial_acc and the first step is lr * g / sqrt(acc0 +
// g^2) from the initial value. (A large acc0 makes that step small: FM's
// embeddings then barely move and it trains much like LR; that is the
// setting, not the state.)
TEST(SparseOptimizerTest, AdagradNewRowKeepsItsInitialVector) {
  SparseOptimizerOptions o;
  o.type = SparseOptimizerType::kAdagrad;
  o.learning_rate = 0.05f;
  o.adagrad_initial_acc = 0.1f;
  o.adagrad_eps = 0.0f;
  auto opt = Make(o);
  storage::RowInitOptions init;
  init.scale = 0.5f;
  opt->ConfigureInit(&init);
  std::vector<float> row(2 + opt->SlotFloats(2));
  storage::InitRow(init, MakeKey(1, 78), 2, opt->SlotFloats(2), row.data());
  const float w0 = row[0];
  EXPECT_FLOAT_EQ(row[2], 0.1f);
  float g[2] = {0.2f, 0.0f};
  opt->Apply(row.data(), g, 2);
  EXPECT_FLOAT_EQ(row[0], w0 - 0.05f * 0.2f / std::sqrt(0.1f + 0.04f));
}

TEST(SparseOptimizerTest, ValidateAndParse) {
  SparseOptimizerOptions o;
  o.learning_rate = -1;
  EXPECT_FALSE(NewSparseOptimizer(o).ok());
  o.learning_rate = 0.1f;
  o.adam_beta1 = 1.0f;
  EXPECT_FALSE(o.Validate().ok());
  EXPECT_EQ(*ParseSparseOptimizer("ftrl"), SparseOptimizerType::kFTRL);
  EXPECT_FALSE(ParseSparseOptimizer("lamb").ok());
}

}  // namespace
}  // namespace ctrps::ps
