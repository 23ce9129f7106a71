#include "worker/eval/eval_accumulator.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace ctrps::worker {
namespace {

struct Data {
  std::vector<float> p, y;
};

Data RandomData(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  Data d;
  for (int i = 0; i < n; ++i) {
    // Scores on a coarse grid so ties cross batch and partition boundaries.
    float p = std::round(u(rng) * 50) / 50;
    d.p.push_back(p);
    d.y.push_back(static_cast<float>(u(rng) < p));
  }
  return d;
}

TEST(EvalAccumulatorTest, BatchesEqualOneShot) {
  Data d = RandomData(5000, 1);
  EvalAccumulator one;
  ASSERT_TRUE(one.Add(d.p, d.y).ok());
  EvalAccumulator batched;
  for (size_t i = 0; i < d.p.size(); i += 128) {
    size_t n = std::min<size_t>(128, d.p.size() - i);
    ASSERT_TRUE(batched.Add(d.p.data() + i, d.y.data() + i, n).ok());
  }
  EvalMetrics a = one.Compute(), b = batched.Compute();
  EXPECT_EQ(a.count, 5000);
  EXPECT_EQ(a.positives, b.positives);
  EXPECT_DOUBLE_EQ(a.auc, b.auc);
  EXPECT_NEAR(a.logloss, b.logloss, 1e-12);
  EXPECT_DOUBLE_EQ(a.auc, *ComputeAuc(d.p, d.y));
  EXPECT_NEAR(a.logloss, *ComputeLogloss(d.p, d.y), 1e-12);
  // The scores are calibrated by construction.
  EXPECT_NEAR(a.calibration_ratio, 1.0, 0.05);
  EXPECT_LT(a.normalized_entropy, 1.0);
}

TEST(EvalAccumulatorTest, MergedPartitionsGiveExactGlobalAuc) {
  Data d = RandomData(6000, 2);
  EvalAccumulator global;
  ASSERT_TRUE(global.Add(d.p, d.y).ok());
  // Four "workers" with an interleaved partition, merged via bytes.
  std::vector<EvalAccumulator> parts(4);
  for (size_t i = 0; i < d.p.size(); ++i) ASSERT_TRUE(parts[(i * 7) % 4].Add(&d.p[i], &d.y[i], 1).ok());
  EvalAccumulator merged;
  for (int w = 3; w >= 0; --w) {
    auto back = EvalAccumulator::Deserialize(parts[w].Serialize());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    merged.Merge(*back);
  }
  EvalMetrics g = global.Compute(), m = merged.Compute();
  EXPECT_EQ(g.count, m.count);
  EXPECT_EQ(g.positives, m.positives);
  EXPECT_DOUBLE_EQ(g.auc, m.auc);
  EXPECT_NEAR(g.logloss, m.logloss, 1e-12);
  EXPECT_NEAR(g.mean_prediction, m.mean_prediction, 1e-12);
}

TEST(EvalAccumulatorTest, SerializeRoundTripIsExact) {
  Data d = RandomData(300, 3);
  EvalAccumulator acc;
  ASSERT_TRUE(acc.Add(d.p, d.y).ok());
  std::string bytes = acc.Serialize();
  auto back = EvalAccumulator::Deserialize(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_EQ(back->pairs().size(), 300u);
}

TEST(EvalAccumulatorTest, DeserializeRejectsCorruptBytes) {
  Data d = RandomData(10, 4);
  EvalAccumulator acc;
  ASSERT_TRUE(acc.Add(d.p, d.y).ok());
  std::string bytes = acc.Serialize();
  EXPECT_EQ(EvalAccumulator::Deserialize("short").status().code(), Status::Code::kCorruption);
  std::string truncated = bytes.substr(0, bytes.size() - 3);
  EXPECT_EQ(EvalAccumulator::Deserialize(truncated).status().code(), Status::Code::kCorruption);
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_EQ(EvalAccumulator::Deserialize(bad_magic).status().code(), Status::Code::kCorruption);
  std::string bad_label = bytes;
  float two = 2.0f;
  std::memcpy(&bad_label[bad_label.size() - 4], &two, 4);  // last pair's label
  EXPECT_EQ(EvalAccumulator::Deserialize(bad_label).status().code(), Status::Code::kCorruption);
}

TEST(EvalAccumulatorTest, WithoutPairsKeepsSumsOnly) {
  Data d = RandomData(1000, 5);
  EvalAccumulator sums(false), full;
  ASSERT_TRUE(sums.Add(d.p, d.y).ok());
  ASSERT_TRUE(full.Add(d.p, d.y).ok());
  EvalMetrics s = sums.Compute(), f = full.Compute();
  EXPECT_TRUE(std::isnan(s.auc));
  EXPECT_TRUE(sums.pairs().empty());
  EXPECT_NEAR(s.logloss, f.logloss, 1e-12);
  EXPECT_TRUE(sums.CalibrationBins(10).empty());
  full.Merge(sums);  // one side without pairs: the result cannot give AUC
  EXPECT_FALSE(full.keeps_pairs());
  EXPECT_EQ(full.Compute().count, 2000);
  EXPECT_TRUE(std::isnan(full.Compute().auc));
}

TEST(EvalAccumulatorTest, CalibrationClosedForm) {
  // Predictions 0.1 x4 (one click) and 0.5 x4 (three clicks).
  std::vector<float> p = {0.1f, 0.1f, 0.1f, 0.1f, 0.5f, 0.5f, 0.5f, 0.5f};
  std::vector<float> y = {1, 0, 0, 0, 1, 1, 1, 0};
  EvalAccumulator acc;
  ASSERT_TRUE(acc.Add(p, y).ok());
  EvalMetrics m = acc.Compute();
  EXPECT_NEAR(m.mean_prediction, 0.3, 1e-7);
  EXPECT_DOUBLE_EQ(m.observed_ctr, 0.5);
  EXPECT_NEAR(m.calibration_ratio, 0.6, 1e-7);
  EXPECT_NEAR(m.normalized_entropy, m.logloss / std::log(2.0), 1e-12);
  auto bins = acc.CalibrationBins(2);
  ASSERT_EQ(bins.size(), 2u);
  EXPECT_EQ(bins[0].count, 4);
  EXPECT_NEAR(bins[0].mean_prediction, 0.1, 1e-7);
  EXPECT_DOUBLE_EQ(bins[0].observed_ctr, 0.25);
  EXPECT_DOUBLE_EQ(bins[1].observed_ctr, 0.75);
  EXPECT_NEAR(ExpectedCalibrationError(bins), (0.15 + 0.25) / 2, 1e-7);
  EXPECT_EQ(acc.CalibrationBins(100).size(), 8u);  // never more bins than examples
}

TEST(EvalAccumulatorTest, RejectsBadBatchAtomically) {
  EvalAccumulator acc;
  std::vector<float> p = {0.2f, 0.3f, -0.1f}, y = {0, 1, 0};
  Status st = acc.Add(p, y);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("example 2"), std::string::npos) << st.ToString();
  EXPECT_EQ(acc.count(), 0);
  EXPECT_FALSE(acc.Add({0.1f}, {0, 1}).ok());
  EvalMetrics empty = acc.Compute();
  EXPECT_EQ(empty.count, 0);
  EXPECT_TRUE(std::isnan(empty.logloss));
  EXPECT_TRUE(std::isnan(empty.auc));
}

}  // namespace
}  // namespace ctrps::worker
