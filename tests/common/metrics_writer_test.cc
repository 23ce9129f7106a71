#include "common/metrics_writer.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace ctrps {
namespace {

TEST(JsonLineTest, Formats) {
  JsonLine l;
  l.Add("step", 10).Add("auc", 0.5).Add("name", "a\"b\n").Add("ok", true).Add("nan", std::nan(""));
  EXPECT_EQ(l.str(), "{\"step\":10,\"auc\":0.5,\"name\":\"a\\\"b\\n\",\"ok\":true,\"nan\":null}");
}

TEST(MetricsWriterTest, WritesLines) {
  const char* tmp = std::getenv("CTRPS_TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  std::string cmd = "mkdir -p " + dir;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string path = dir + "/metrics_writer_test.jsonl";
  {
    MetricsWriter w;
    ASSERT_TRUE(w.Open(path, true).ok());
    w.Write(JsonLine().Add("a", 1));
    w.Write(JsonLine().Add("b", 2));
  }
  std::ifstream in(path);
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_EQ(l1, "{\"a\":1}");
  EXPECT_EQ(l2, "{\"b\":2}");
  MetricsWriter bad;
  EXPECT_EQ(bad.Open("/nonexistent-dir/x.jsonl", true).code(), Status::Code::kIOError);
}

}  // namespace
}  // namespace ctrps
