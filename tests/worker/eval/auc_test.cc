#include "worker/eval/auc.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace ctrps::worker {
namespace {

// The definition, pair by pair: O(n^2).
double ReferenceAuc(const std::vector<float>& s, const std::vector<float>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] != 1) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] != 0) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

TEST(AucTest, ClosedFormCases) {
  EXPECT_DOUBLE_EQ(*ComputeAuc({0.1f, 0.9f}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(*ComputeAuc({0.9f, 0.1f}, {0, 1}), 0.0);
  EXPECT_DOUBLE_EQ(*ComputeAuc({0.5f, 0.5f}, {0, 1}), 0.5);
  // Positives at 0.8, 0.4; negatives at 0.6, 0.2: 3 of 4 pairs ordered.
  EXPECT_DOUBLE_EQ(*ComputeAuc({0.8f, 0.6f, 0.4f, 0.2f}, {1, 0, 1, 0}), 0.75);
  // Ties across classes: pos {0.5, 0.7}, neg {0.5, 0.3}:
  // (0.5 vs 0.5) = 1/2, (0.5 vs 0.3) = 1, (0.7 vs both) = 2 -> 3.5 / 4.
  EXPECT_DOUBLE_EQ(*ComputeAuc({0.5f, 0.7f, 0.5f, 0.3f}, {1, 1, 0, 0}), 0.875);
  // All scores equal: exactly 1/2 whatever the class balance.
  EXPECT_DOUBLE_EQ(*ComputeAuc(std::vector<float>(7, 0.3f), {1, 0, 0, 1, 0, 0, 0}), 0.5);
}

TEST(AucTest, RankOnlyAndNegativeScores) {
  std::vector<float> y = {1, 0, 1, 0, 0, 1};
  std::vector<float> s = {3.0f, -1.0f, 0.5f, 0.5f, -7.0f, 2.0f};
  std::vector<float> shifted;
  for (float v : s) shifted.push_back(std::exp(v));  // monotone: same AUC
  EXPECT_DOUBLE_EQ(*ComputeAuc(s, y), *ComputeAuc(shifted, y));
  EXPECT_DOUBLE_EQ(*ComputeAuc(s, y), ReferenceAuc(s, y));
}

TEST(AucTest, MatchesQuadraticReferenceWithTies) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    int n = 1 + static_cast<int>(rng() % 400);
    int levels = 1 + static_cast<int>(rng() % 12);  // few levels: many ties
    std::vector<float> s(n), y(n);
    for (int i = 0; i < n; ++i) {
      y[i] = static_cast<float>(rng() % 3 == 0);
      s[i] = static_cast<float>(rng() % levels) / levels + 0.3f * y[i] * (rng() % 2);
    }
    double expected = ReferenceAuc(s, y);
    double got = *ComputeAuc(s, y);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << "trial " << trial;
    } else {
      EXPECT_NEAR(got, expected, 1e-12) << "trial " << trial << " n " << n;
    }
  }
}

TEST(AucTest, SingleClassOrEmptyIsNaN) {
  EXPECT_TRUE(std::isnan(*ComputeAuc({0.1f, 0.7f}, {1, 1})));
  EXPECT_TRUE(std::isnan(*ComputeAuc({0.1f, 0.7f}, {0, 0})));
  EXPECT_TRUE(std::isnan(*ComputeAuc({}, {})));
}

TEST(AucTest, RejectsBadInput) {
  EXPECT_EQ(ComputeAuc({0.1f}, {1, 0}).status().code(), Status::Code::kInvalidArgument);
  auto bad_label = ComputeAuc({0.1f, 0.2f}, {1, 2});
  EXPECT_EQ(bad_label.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad_label.status().message().find("example 1"), std::string::npos)
      << bad_label.status().ToString();
  EXPECT_FALSE(ComputeAuc({std::nanf(""), 0.2f}, {1, 0}).ok());
  EXPECT_FALSE(ComputeLogloss({1.5f}, {1}).ok());
}

TEST(LoglossTest, KnownValues) {
  EXPECT_NEAR(*ComputeLogloss({0.5f, 0.5f}, {1, 0}), std::log(2.0), 1e-12);
  // -(ln 0.8 + ln(1 - 0.25)) / 2
  EXPECT_NEAR(*ComputeLogloss({0.8f, 0.25f}, {1, 0}), -(std::log(0.8f) + std::log(0.75)) / 2,
              1e-7);
  // Certain and right: the clip keeps it at -ln(1 - eps), not 0.
  EXPECT_NEAR(ClippedLogloss(1.0, 1), -std::log1p(-kLoglossEps), 1e-15);
  // Certain and wrong: clipped to -ln(eps) instead of infinity.
  EXPECT_NEAR(ClippedLogloss(0.0, 1), -std::log(kLoglossEps), 1e-9);
  EXPECT_NEAR(ClippedLogloss(1.0, 0), -std::log(kLoglossEps), 1e-6);
  EXPECT_TRUE(std::isnan(*ComputeLogloss({}, {})));
}

}  // namespace
}  // namespace ctrps::worker
