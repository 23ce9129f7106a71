// The report's metrics reader and page (launch/report/): parsing and its
// errors, and what the page holds. The page in a real browser is checked by
// tests/integration/report.sh.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/metrics_writer.h"
#include "launch/report/metrics_log.h"
#include "launch/report/report_page.h"

namespace ctrps::launch::report {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("ctrps_report_test_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(ParseMetricLine, ReadsWhatTheWriterWrites) {
  const std::string written = JsonLine()
                                  .Add("event", "eval")
                                  .Add("step", 1200)
                                  .Add("auc", 0.78125)
                                  .Add("nan", std::numeric_limits<double>::quiet_NaN())
                                  .Add("early", true)
                                  .Add("name", "a \"q\"\\\n\t\x01 b")
                                  .str();
  auto l = ParseMetricLine(written);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->event(), "eval");
  EXPECT_EQ(l->Number("step"), 1200);
  EXPECT_DOUBLE_EQ(l->Number("auc"), 0.78125);
  EXPECT_EQ(l->fields.at("nan").kind, MetricValue::Kind::kNull);
  EXPECT_EQ(l->Number("nan", -1), -1);
  EXPECT_TRUE(l->Flag("early"));
  EXPECT_EQ(l->Text("name"), "a \"q\"\\\n\t\x01 b");
  EXPECT_EQ(l->raw, written);
  EXPECT_FALSE(l->Has("missing"));
}

TEST(ParseMetricLine, NumbersInEveryJsonForm) {
  auto l = ParseMetricLine(R"({"a":-0.5,"b":1e3,"c":2.5E-2,"d":0,"e":-7,"u":"\u00e9"})");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->Number("a"), -0.5);
  EXPECT_EQ(l->Number("b"), 1000);
  EXPECT_DOUBLE_EQ(l->Number("c"), 0.025);
  EXPECT_EQ(l->Number("e"), -7);
  EXPECT_EQ(l->Text("u"), "\xc3\xa9");
  EXPECT_TRUE(ParseMetricLine("{}").ok());
}

TEST(ParseMetricLine, BadLinesNameTheColumnAndWhatWasExpected) {
  struct Case {
    const char* line;
    const char* expect;
  };
  const Case cases[] = {
      {"[1]", "column 1: expected '{'"},
      {R"({"a" 1})", "column 6: expected ':' after field \"a\""},
      {R"({"a":1,})", "column 8: expected a field name"},
      {R"({"a":1} x)", "column 9: expected the end of the line"},
      {R"({"a":1.})", "digits after the decimal point of field \"a\""},
      {R"({"a":tru})", "a number, string, true, false or null for field \"a\""},
      {R"({"a":"x)", "the closing '\"'"},
      {R"({"a":1,"a":2})", "field \"a\" appears twice"},
      {R"({"a":{"b":1}})", "for field \"a\""},
      {R"({"a":"\q"})", "an escape"},
      {R"({"a":1)", "',' or '}' after field \"a\""},
  };
  for (const Case& c : cases) {
    auto l = ParseMetricLine(c.line);
    ASSERT_FALSE(l.ok()) << c.line;
    EXPECT_NE(l.status().message().find(c.expect), std::string::npos)
        << c.line << " -> " << l.status().message();
  }
}

TEST(ReadRunMetrics, ReadsARunDirectoryAndNamesItsLines) {
  const std::string dir = TempDir("read") + "/my_run";
  fs::create_directories(dir);
  Write(dir + "/metrics.jsonl",
        "{\"event\":\"train\",\"step\":100,\"loss\":0.5}\n\n{\"event\":\"train_done\",\"steps\":120}\n");
  auto run = ReadRunMetrics(dir);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->name, "my_run");
  EXPECT_EQ(run->path, dir + "/metrics.jsonl");
  ASSERT_EQ(run->lines.size(), 2u);
  EXPECT_EQ(run->lines[1].line_number, 3);
  EXPECT_EQ(run->Events("train_done").size(), 1u);
  EXPECT_FALSE(run->IsCompressRun());
  EXPECT_FALSE(run->dropped_partial_last_line);
  // The file itself works too; a trailing slash does not lose the name.
  auto by_file = ReadRunMetrics(dir + "/metrics.jsonl");
  ASSERT_TRUE(by_file.ok());
  EXPECT_EQ(by_file->name, "my_run");
  auto slash = ReadRunMetrics(dir + "/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->name, "my_run");
}

TEST(ReadRunMetrics, AnUnfinishedLastLineIsDroppedABadLineElsewhereIsAnError) {
  const std::string dir = TempDir("bad");
  Write(dir + "/metrics.jsonl", "{\"event\":\"train\",\"step\":100}\n{\"event\":\"tra");
  auto run = ReadRunMetrics(dir);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->lines.size(), 1u);
  EXPECT_TRUE(run->dropped_partial_last_line);

  Write(dir + "/metrics.jsonl", "{\"event\":\"train\"}\n{\"event\" \"x\"}\n{\"event\":\"y\"}\n");
  run = ReadRunMetrics(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find(dir + "/metrics.jsonl:2: column 10: expected ':'"),
            std::string::npos)
      << run.status().message();

  Write(dir + "/metrics.jsonl", "");
  run = ReadRunMetrics(dir);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("holds no metrics line"), std::string::npos);

  EXPECT_NE(ReadRunMetrics(dir + "/nope").status().message().find("no such run directory"),
            std::string::npos);
  const std::string empty_dir = TempDir("empty");
  EXPECT_NE(ReadRunMetrics(empty_dir).status().message().find("holds no metrics.jsonl"),
            std::string::npos);
}

RunMetrics RunOf(const std::string& name, const std::string& text) {
  const std::string dir = TempDir("page_" + name) + "/" + name;
  fs::create_directories(dir);
  Write(dir + "/metrics.jsonl", text);
  auto run = ReadRunMetrics(dir);
  EXPECT_TRUE(run.ok()) << run.status().ToString();
  return *run;
}

TEST(BuildReportPage, HoldsTheChartsTheTablesAndTheDataSafely) {
  RunMetrics train = RunOf(
      "trained",
      "{\"event\":\"train\",\"step\":100,\"loss\":0.51,\"seconds\":1.5,\"samples_per_s\":9000}\n"
      "{\"event\":\"eval\",\"split\":\"valid\",\"step\":100,\"auc\":0.7,\"logloss\":0.45}\n"
      "{\"event\":\"train_done\",\"steps\":200,\"samples\":51200,\"seconds\":3,\"read_s\":0.2,"
      "\"pull_s\":0.4,\"compute_s\":2,\"allreduce_s\":0,\"push_s\":0.3,\"wait_s\":0}\n"
      "{\"event\":\"table\",\"step\":200,\"table\":3,\"rows\":4321,\"bytes\":1000,"
      "\"dram_hits\":75,\"dram_misses\":25}\n"
      "{\"event\":\"table\",\"step\":200,\"table\":4,\"rows\":1000,\"bytes\":24,"
      "\"dram_hits\":25,\"dram_misses\":75}\n"
      "{\"event\":\"checkpoint\",\"step\":200,\"name\":\"ckpt-000200\",\"incremental\":false,"
      "\"rows\":10,\"bytes\":2048,\"seconds\":0.1,\"mb_per_s\":20}\n"
      "{\"event\":\"note\",\"text\":\"</script><script>alert(1)</script><!--\"}\n");
  ReportOptions o;
  o.title = "t <1>";
  const std::string page = BuildReportPage({train}, o);
  EXPECT_NE(page.find("<title>t &lt;1&gt;</title>"), std::string::npos);
  for (const char* id : {"loss_step", "loss_time", "auc_step", "auc_time", "logloss_step",
                         "logloss_time", "throughput", "split", "worker_split"})
    EXPECT_NE(page.find("id=\"chart-" + std::string(id) + "\""), std::string::npos) << id;
  EXPECT_NE(page.find("Chart.js v3"), std::string::npos) << "Chart.js is not inlined";
  EXPECT_NE(page.find("ctrps-rendered"), std::string::npos);
  // The data cannot close its <script> element or open a comment.
  EXPECT_EQ(page.find("</script><script>alert"), std::string::npos);
  EXPECT_NE(page.find("\\u003c/script><script>alert(1)\\u003c/script>\\u003c!--"),
            std::string::npos);
  // Tables: the split per step (compute 2 s over 200 steps), the table
  // counters (table 3's hit rate 0.75), the checkpoint; no compression section.
  EXPECT_NE(page.find("<td>10.000</td>"), std::string::npos);
  EXPECT_NE(page.find("4&#8239;321"), std::string::npos);
  EXPECT_NE(page.find("<td>0.7500</td>"), std::string::npos);
  // The sum over both tables: 5321 rows, hit rate 100 of 200.
  EXPECT_NE(page.find("<td>all 2</td><td>5&#8239;321</td><td>1.00 KiB</td>"), std::string::npos);
  EXPECT_NE(page.find("<td>0.5000</td>"), std::string::npos);
  EXPECT_NE(page.find("ckpt-000200"), std::string::npos);
  EXPECT_EQ(page.find("chart-tradeoff_bytes"), std::string::npos);
}

TEST(BuildReportPage, ACompressionRunGetsItsBeforeAfterTableAndTradeOffPlots) {
  RunMetrics c = RunOf(
      "afm",
      "{\"event\":\"compress_begin\",\"from\":\"m\",\"stages\":1,\"first_stage\":0}\n"
      "{\"event\":\"compress_model\",\"model\":\"uncompressed\",\"params\":1000,\"bytes\":8000,"
      "\"rows\":10,\"seconds\":0,\"test_auc\":0.75,\"test_logloss\":0.5}\n"
      "{\"event\":\"compress_rank\",\"stage\":\"s\",\"what\":\"mlp.1\",\"width\":32,\"rank\":8,"
      "\"kept\":0.9,\"dropped\":0.1}\n"
      "{\"event\":\"compress_model\",\"model\":\"s\",\"params\":250,\"bytes\":2000,\"rows\":10,"
      "\"seconds\":3,\"test_auc\":0.74,\"test_logloss\":0.51}\n");
  EXPECT_TRUE(c.IsCompressRun());
  const std::string page = BuildReportPage({c}, {});
  EXPECT_NE(page.find("id=\"chart-tradeoff_bytes\""), std::string::npos);
  EXPECT_NE(page.find("id=\"chart-tradeoff_latency\""), std::string::npos);
  EXPECT_NE(page.find("<td>4.00x fewer</td>"), std::string::npos);
  EXPECT_NE(page.find("<td>-0.01000</td>"), std::string::npos);
  EXPECT_NE(page.find("<td class=\"l\">mlp.1</td>"), std::string::npos);
  // No UMEC or DeepLight lines: no such sections.
  EXPECT_EQ(page.find("id=\"chart-umec_resource\""), std::string::npos);
  EXPECT_EQ(page.find("id=\"chart-deeplight_sparsity\""), std::string::npos);
}

// UMEC's and DeepLight's lines give their sections: the charts' canvases
// and the tables (selection; last pruning with its sparsity shares).
TEST(BuildReportPage, UmecAndDeepLightRunsGetTheirSections) {
  RunMetrics u = RunOf(
      "umec",
      "{\"event\":\"compress_begin\",\"from\":\"m\",\"stages\":1,\"first_stage\":0}\n"
      "{\"event\":\"umec\",\"step\":10,\"resource\":0.9,\"budget\":0.5,\"z\":0.8,"
      "\"s.mlp.0\":0.5,\"y.mlp.0\":0.1,\"dropped.mlp.0\":1,\"least.mlp.0\":0.01}\n"
      "{\"event\":\"compress_umec\",\"stage\":\"umec\",\"resource\":0.4987,\"budget\":0.5,"
      "\"forced\":3,\"dropped_fields\":\"I5,C7\",\"mlp_dims\":\"8-7\",\"seconds\":1}\n");
  RunMetrics d = RunOf(
      "dl",
      "{\"event\":\"prune\",\"step\":10,\"target\":0.5,\"mlp_weights\":1000,\"mlp_nonzero\":500,"
      "\"pairs\":0,\"pairs_nonzero\":0,\"embedding_entries\":400,\"embedding_zero\":100,"
      "\"embedding_zeroed\":100}\n"
      "{\"event\":\"prune\",\"step\":20,\"target\":0.8,\"mlp_weights\":1000,\"mlp_nonzero\":200,"
      "\"pairs\":0,\"pairs_nonzero\":0,\"embedding_entries\":400,\"embedding_zero\":160,"
      "\"embedding_zeroed\":60}\n");
  const std::string page = BuildReportPage({u, d}, {});
  for (const char* id : {"umec_resource", "umec_dropped", "umec_duals", "deeplight_sparsity"})
    EXPECT_NE(page.find(std::string("id=\"chart-") + id + "\""), std::string::npos) << id;
  EXPECT_NE(page.find("<td class=\"l\">compress stage umec</td><td>0.4987</td><td>0.5000</td><td>3</td>"
                      "<td class=\"l\">I5,C7</td><td class=\"l\">8-7</td>"),
            std::string::npos);
  // The last pruning: step 20, 80% of the MLP and 40% of the embedding entries zero.
  EXPECT_NE(page.find("<td class=\"l\">dl</td><td>20</td><td>0.8000</td><td>200</td><td>1&#8239;000</td>"
                      "<td>80.00%</td>"),
            std::string::npos);
  EXPECT_NE(page.find("<td>40.00%</td></tr>"), std::string::npos);
}

}  // namespace
}  // namespace ctrps::launch::report
