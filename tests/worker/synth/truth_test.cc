#include "worker/synth/truth.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tests/worker/synth/synth_test_util.h"

namespace ctrps::worker::synth {
namespace {

using testing::FreshTestDir;
using testing::WriteFile;

TEST(TruthTest, ReadsProbabilitiesAndSkipsTheHeader) {
  const std::string dir = FreshTestDir("truth_read");
  WriteFile(dir + "/a.truth", "0.250000000\n1.000000000\n0\n");
  WriteFile(dir + "/b.truth", "click_prob\n0.5\r\n");
  EXPECT_EQ(*ReadTruthFile(dir + "/a.truth"), (std::vector<float>{0.25f, 1.0f, 0.0f}));
  EXPECT_EQ(*ReadTruthFile(dir + "/b.truth"), (std::vector<float>{0.5f}));
}

TEST(TruthTest, BadLinesNameFileAndLine) {
  const std::string dir = FreshTestDir("truth_bad");
  for (const std::string bad : {"abc", "1.5", "-0.1", "0.5x", "", "nan"}) {
    WriteFile(dir + "/x.truth", "0.1\n0.2\n" + bad + "\n");
    StatusOr<std::vector<float>> r = ReadTruthFile(dir + "/x.truth");
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(dir + "/x.truth:3: expected a probability"),
              std::string::npos) << r.status().message();
  }
  EXPECT_EQ(ReadTruthFile(dir + "/missing.truth").status().code(), Status::Code::kIOError);
}

TEST(TruthTest, EvaluatesCriteoAndAvazu) {
  const std::string dir = FreshTestDir("truth_eval");
  WriteFile(dir + "/c.txt", "1\t5\t\t3a171ecb\n0\t\n1\n0\t1\n");
  WriteFile(dir + "/c.txt.truth", "0.9\n0.2\n0.6\n0.6\n");
  StatusOr<EvalMetrics> c = EvaluateTruth(dir + "/c.txt.truth", dir + "/c.txt");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->count, 4);
  EXPECT_EQ(c->positives, 2);
  EXPECT_DOUBLE_EQ(c->auc, 0.875);  // (1 + 1 + 1 + 0.5) / 4
  WriteFile(dir + "/a.csv", "id,click,hour,C1\n12,1,14102100,1005\n13,0,14102100,1005\n");
  WriteFile(dir + "/a.csv.truth", "click_prob\n0.7\n0.1\n");
  StatusOr<EvalMetrics> a = EvaluateTruth(dir + "/a.csv.truth", dir + "/a.csv");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->count, 2);
  EXPECT_DOUBLE_EQ(a->auc, 1.0);
  EXPECT_NEAR(a->logloss, -(std::log(0.7) + std::log(0.9)) / 2, 1e-6);
}

TEST(TruthTest, MismatchesAreClearErrors) {
  const std::string dir = FreshTestDir("truth_mismatch");
  WriteFile(dir + "/d.txt", "1\ta\n0\tb\n1\tc\n");
  WriteFile(dir + "/short.truth", "0.5\n0.5\n");
  Status st = EvaluateTruth(dir + "/short.truth", dir + "/d.txt").status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find(dir + "/short.truth has 2 lines but " + dir + "/d.txt has more"),
            std::string::npos) << st.message();
  EXPECT_NE(st.message().find(dir + "/d.txt:3"), std::string::npos) << st.message();
  WriteFile(dir + "/long.truth", "0.5\n0.5\n0.5\n0.5\n");
  st = EvaluateTruth(dir + "/long.truth", dir + "/d.txt").status();
  EXPECT_NE(st.message().find("first unmatched line: " + dir + "/long.truth:4"), std::string::npos)
      << st.message();
  WriteFile(dir + "/bad_label.txt", "1\ta\n2\tb\n");
  WriteFile(dir + "/two.truth", "0.5\n0.5\n");
  st = EvaluateTruth(dir + "/two.truth", dir + "/bad_label.txt").status();
  EXPECT_NE(st.message().find(dir + "/bad_label.txt:2: expected a 0/1 label"), std::string::npos)
      << st.message();
  WriteFile(dir + "/header.truth", "click_prob\n0.5\n0.5\n");
  st = EvaluateTruth(dir + "/header.truth", dir + "/d.txt").status();
  EXPECT_NE(st.message().find(dir + "/header.truth:1"), std::string::npos) << st.message();
  WriteFile(dir + "/a.csv", "id,click,hour\n1,0,14102100\n");
  st = EvaluateTruth(dir + "/two.truth", dir + "/a.csv").status();
  EXPECT_NE(st.message().find("expected the header 'click_prob'"), std::string::npos) << st.message();
}

TEST(TruthTest, DataPathForTruth) {
  EXPECT_EQ(*DataPathForTruth("out/test.txt.truth"), "out/test.txt");
  EXPECT_FALSE(DataPathForTruth("out/test.txt").ok());
  EXPECT_FALSE(DataPathForTruth(".truth").ok());
}

}  // namespace
}  // namespace ctrps::worker::synth
