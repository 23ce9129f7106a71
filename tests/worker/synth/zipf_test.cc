#include "worker/synth/zipf.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace ctrps::worker::synth {
namespace {

// Draws `draws` samples and compares the frequency of each of the first
// `check` ids with the exact Zipf probability, within 5 standard errors.
void ExpectZipf(uint64_t n, double s, int check, int draws) {
  double norm = 0;
  for (uint64_t k = 1; k <= n; ++k) norm += std::pow(static_cast<double>(k), -s);
  ZipfSampler zipf(n, s);
  Rng rng(n * 31 + static_cast<uint64_t>(s * 1000));
  std::vector<int64_t> counts(check + 1, 0);
  for (int i = 0; i < draws; ++i) {
    const uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    if (k <= static_cast<uint64_t>(check)) ++counts[k];
  }
  for (int k = 1; k <= check; ++k) {
    const double p = std::pow(static_cast<double>(k), -s) / norm;
    const double se = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(static_cast<double>(counts[k]) / draws, p, 5 * se + 1e-9)
        << "n " << n << " s " << s << " k " << k;
  }
}

TEST(ZipfTest, AliasTableMatchesExactPmf) {
  ExpectZipf(10, 1.1, 10, 200000);
  ExpectZipf(1000, 0.7, 20, 200000);
  ExpectZipf(kZipfTableMax, 1.0, 20, 200000);
}

TEST(ZipfTest, RejectionInversionMatchesExactPmf) {
  ExpectZipf(kZipfTableMax + 1, 1.1, 20, 300000);
  ExpectZipf(2000000, 1.0, 20, 300000);  // s = 1 exactly: the log limit
  ExpectZipf(300000, 2.5, 10, 300000);
  ExpectZipf(300000, 0.5, 10, 300000);
}

TEST(ZipfTest, HugeVocabularyNeedsNoMemoryAndStaysInRange) {
  ZipfSampler zipf(uint64_t{1} << 40, 1.05);
  Rng rng(3);
  uint64_t max_seen = 0;
  for (int i = 0; i < 100000; ++i) {
    uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, uint64_t{1} << 40);
    max_seen = std::max(max_seen, k);
  }
  EXPECT_GT(max_seen, uint64_t{1} << 20);  // the long tail is really drawn
}

TEST(ZipfTest, SingleValue) {
  ZipfSampler zipf(1, 1.1);
  Rng rng(1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(zipf.Sample(rng), 1u);
}

TEST(ZipfTest, SameStreamSameDraws) {
  ZipfSampler zipf(5000000, 1.1);
  Rng a(9), b(9);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(zipf.Sample(a), zipf.Sample(b));
}

}  // namespace
}  // namespace ctrps::worker::synth
