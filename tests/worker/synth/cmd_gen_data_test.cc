#include "launch/cmd_gen_data.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/worker/synth/synth_test_util.h"

namespace ctrps::launch {
namespace {

using worker::synth::testing::FreshTestDir;

int RunCaptured(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int rc = RunGenData(args);
  std::string o = ::testing::internal::GetCapturedStdout();
  std::string e = ::testing::internal::GetCapturedStderr();
  if (out) *out = o;
  if (err) *err = e;
  return rc;
}

TEST(GenDataCommandTest, GeneratesThenSkipsThenForces) {
  const std::string dir = FreshTestDir("cmd");
  const std::vector<std::string> args = {"--format", "criteo", "--rows", "2k", "--out", dir,
                                         "--vocab-scale=0.001", "--eval-rows", "500", "--quiet"};
  std::string out;
  ASSERT_EQ(RunCaptured(args, &out), 0) << out;
  EXPECT_NE(out.find("Bayes AUC"), std::string::npos) << out;
  for (const char* f : {"train.txt", "valid.txt.truth", "test.txt", "meta.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  }
  EXPECT_EQ(worker::synth::testing::ReadLines(dir + "/train.txt").size(), 2000u);
  EXPECT_EQ(worker::synth::testing::ReadLines(dir + "/test.txt").size(), 500u);
  ASSERT_EQ(RunCaptured(args, &out), 0);
  EXPECT_NE(out.find("skipped"), std::string::npos) << out;
  std::vector<std::string> forced = args;
  forced.push_back("--force");
  ASSERT_EQ(RunCaptured(forced, &out), 0);
  EXPECT_EQ(out.find("skipped"), std::string::npos) << out;
  std::vector<std::string> reseeded = args;
  reseeded.insert(reseeded.end(), {"--seed", "5"});
  ASSERT_EQ(RunCaptured(reseeded, &out), 0);
  EXPECT_EQ(out.find("skipped"), std::string::npos) << out;

  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunTruthReport(dir + "/test.txt.truth"), 0);
  std::string report = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(report.find("AUC 0."), std::string::npos) << report;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunTruthReport(dir + "/nope.txt.truth"), 1);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("nope.txt"), std::string::npos);
}

TEST(GenDataCommandTest, UsageErrorsExitTwoWithAClearMessage) {
  const std::string dir = FreshTestDir("cmd_usage");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"--format", "criteo", "--rows", "10", "--out", dir, "--bogus"}, "unknown flag --bogus"},
      {{"--format", "criteo", "--rows", "ten", "--out", dir}, "--rows: 'ten' is not a non-negative integer"},
      {{"--format", "criteo", "--rows", "-5", "--out", dir}, "--rows: '-5'"},
      {{"--format", "parquet", "--rows", "10", "--out", dir}, "unknown data format 'parquet'"},
      {{"--rows", "10", "--out", dir}, "missing --format"},
      {{"--format", "avazu", "--rows", "10"}, "missing --out"},
      {{"--format", "avazu", "--rows", "10", "--out", dir, "--zipf", "1.1.1"}, "--zipf: '1.1.1' is not a number"},
      {{"--format", "avazu", "--rows", "10", "--out", dir, "--threads"}, "flag --threads needs a value"},
      {{"--format", "avazu", "--rows", "10", "--out", dir, "--rows", "5"}, "flag --rows given more than once"},
      {{"--format", "avazu", "--rows", "10", "--out", dir, "--noise-fields", "I1"}, "noise field 'I1' is not a field of avazu data"},
      {{"--format", "criteo", "--rows", "10", "--out", dir, "stray"}, "unexpected argument 'stray'"},
  };
  for (const Case& c : cases) {
    std::string err;
    EXPECT_EQ(RunCaptured(c.args, nullptr, &err), 2) << c.expect;
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
  std::string out;
  EXPECT_EQ(RunCaptured({"--help"}, &out), 0);
  EXPECT_NE(out.find("Usage: ctrps gen-data"), std::string::npos);
  EXPECT_NE(out.find("--noise-fields A,B"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/meta.json"));
}

}  // namespace
}  // namespace ctrps::launch
