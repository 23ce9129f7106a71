// The malformed-line policy end to end: files on disk, lenient and strict
// mode, messages naming file:line and the column.
#include "worker/data/row_reader.h"

#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "tests/worker/data/test_util.h"
#include "worker/data/input_files.h"

namespace ctrps::worker {
namespace {

using testing::AvazuHeader;
using testing::AvazuLine;
using testing::CriteoLine;
using testing::TestDir;
using testing::WriteFile;

std::unique_ptr<PartitionReader> MustOpen(std::vector<InputFile> files, const PartitionReaderOptions& options) {
  return testing::MustOk(PartitionReader::Open(std::move(files), options));
}

// Captures spdlog output for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }
  int Count(const std::string& needle) const {
    int n = 0;
    std::string s = stream_.str();
    for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct ReadOutcome {
  Status status;
  ReadStats stats;
  int rows = 0;
};

ReadOutcome ReadWith(const std::string& spec, const ParserOptions& parser_options, MalformedOptions malformed,
                     int reader_index = 0, int num_readers = 1, size_t max_line_bytes = 400) {
  auto files = ResolveInputFiles(spec);
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  auto parser = testing::MustOk(NewLineParser(parser_options));
  PartitionReaderOptions reading;
  reading.partition.reader_index = reader_index;
  reading.partition.num_readers = num_readers;
  reading.line.max_line_bytes = max_line_bytes;
  reading.header_lines = parser->header_lines();
  RowReader reader(MustOpen(*files, reading), std::move(parser), malformed);
  Batch batch;
  batch.num_fields = reader.schema().num_fields();
  ReadOutcome out;
  while (true) {
    auto got = reader.ReadRows(7, &batch);
    if (!got.ok()) {
      out.status = got.status();
      break;
    }
    if (*got == 0) break;
  }
  out.rows = batch.size();
  out.stats = reader.stats();
  EXPECT_EQ(out.stats.lines, out.stats.rows + out.stats.header_lines + out.stats.malformed_lines());
  return out;
}

struct BadLine {
  std::string line;
  MalformedReason reason;
  std::string message_part;  // expected after "file:line: "
};

std::vector<BadLine> CriteoBadLines() {
  std::string ok = CriteoLine();
  return {
      {CriteoLine("2"), MalformedReason::kBadLabel, "label: expected 0 or 1, got '2'"},
      {ok.substr(0, ok.rfind('\t')), MalformedReason::kWrongColumnCount, "expected 40 tab-separated columns"},
      {CriteoLine("0", {"1", "x7"}), MalformedReason::kBadInteger, "I2: expected an integer"},
      {CriteoLine("0", {}, {"ok", "a\x03"}), MalformedReason::kControlCharacter, "C2: control byte"},
      {CriteoLine("0", {}, {"\xc3\x28"}), MalformedReason::kInvalidUtf8, "invalid UTF-8 at byte"},
      {CriteoLine("0", {}, {std::string("a\0b", 3)}), MalformedReason::kNulByte, "NUL byte at byte"},
      {CriteoLine("0", {}, {std::string(500, 'f')}), MalformedReason::kLineTooLong, "line of 754 bytes is longer than max_line_bytes"},
  };
}

TEST(RowReaderTest, LenientModeSkipsCountsAndLogsEveryKind) {
  std::string dir = TestDir();
  std::vector<BadLine> bad = CriteoBadLines();
  std::string content = CriteoLine("1") + "\n";  // line 1
  for (const BadLine& b : bad) content += b.line + "\n" + CriteoLine("0") + "\r\n";
  content += "\n" + CriteoLine("1");  // an empty line, then a last line without "\n"
  std::string path = WriteFile(dir + "/train.txt", content);
  LogCapture log;
  ReadOutcome out = ReadWith(path, {}, {});
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, 2 + static_cast<int>(bad.size()));
  EXPECT_EQ(out.stats.malformed_lines(), static_cast<int64_t>(bad.size()) + 1);
  EXPECT_EQ(out.stats.count(MalformedReason::kEmptyLine), 1);
  for (size_t k = 0; k < bad.size(); ++k) {
    EXPECT_EQ(out.stats.count(bad[k].reason), 1) << MalformedReasonName(bad[k].reason);
    // Bad line k sits on line 2 + 2k.
    std::string expected = path + ":" + std::to_string(2 + 2 * k) + ": " + bad[k].message_part;
    EXPECT_NE(log.text().find(expected), std::string::npos) << expected << "\nlog:\n" << log.text();
  }
  std::string summary = out.stats.ToString();
  EXPECT_NE(summary.find("bad label: 1"), std::string::npos) << summary;
  EXPECT_NE(summary.find("line too long: 1"), std::string::npos) << summary;
  EXPECT_NE(summary.find(std::to_string(out.rows) + " rows"), std::string::npos) << summary;
}

TEST(RowReaderTest, LenientModeLogsOnlyTheFirstFew) {
  std::string dir = TestDir();
  std::string content;
  for (int i = 0; i < 20; ++i) content += "garbage\n";
  std::string path = WriteFile(dir + "/bad.txt", content);
  LogCapture log;
  MalformedOptions malformed;
  malformed.max_logged_lines = 3;
  ReadOutcome out = ReadWith(path, {}, malformed);
  EXPECT_TRUE(out.status.ok());
  EXPECT_EQ(out.stats.count(MalformedReason::kWrongColumnCount), 20);
  EXPECT_EQ(log.Count("skipping malformed line"), 3);
  EXPECT_EQ(log.Count("further malformed lines are counted but not logged"), 1);
}

TEST(RowReaderTest, StrictModeStopsAtEachKindWithFileLineAndColumn) {
  std::string dir = TestDir();
  for (const BadLine& b : CriteoBadLines()) {
    std::string path = WriteFile(dir + "/strict.txt", CriteoLine() + "\n\n" + CriteoLine() + "\n" + b.line + "\n" +
                                                          CriteoLine() + "\n");
    MalformedOptions strict;
    strict.strict = true;
    ReadOutcome out = ReadWith(path, {}, strict);
    ASSERT_FALSE(out.status.ok()) << b.message_part;
    EXPECT_EQ(out.status.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(out.status.message().rfind(path + ":4: " + b.message_part, 0), 0u) << out.status.message();
    EXPECT_EQ(out.rows, 2);  // the rows before it; the empty line 2 is only counted
    EXPECT_EQ(out.stats.count(MalformedReason::kEmptyLine), 1);
    EXPECT_EQ(out.stats.count(b.reason), 1);
  }
}

TEST(RowReaderTest, StrictMessagesForAvazuAndLibffm) {
  std::string dir = TestDir();
  MalformedOptions strict;
  strict.strict = true;
  ParserOptions avazu;
  avazu.format = DataFormat::kAvazu;
  std::string a = WriteFile(dir + "/a.csv", std::string(AvazuHeader()) + "\n" + AvazuLine() + "\n" +
                                                AvazuLine("7", "0", "14023000") + "\n");
  ReadOutcome out = ReadWith(a, avazu, strict);
  EXPECT_EQ(out.status.message().rfind(a + ":3: hour: expected YYMMDDHH with a real date", 0), 0u)
      << out.status.message();

  ParserOptions ffm;
  ffm.format = DataFormat::kLibffm;
  ffm.libffm_num_fields = 2;
  std::string f = WriteFile(dir + "/f.ffm", "1 0:a:1\n0 1:b:1 1:c:1\n");
  out = ReadWith(f, ffm, strict);
  EXPECT_EQ(out.status.message().rfind(f + ":2: token 2: field 1 appears more than once", 0), 0u)
      << out.status.message();
  out = ReadWith(f, ffm, {});
  EXPECT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, 1);
  EXPECT_EQ(out.stats.count(MalformedReason::kDuplicateField), 1);
}

TEST(RowReaderTest, BadHeaderIsAnErrorInBothModes) {
  std::string dir = TestDir();
  ParserOptions avazu;
  avazu.format = DataFormat::kAvazu;
  std::string good = WriteFile(dir + "/1.csv", std::string(AvazuHeader()) + "\n" + AvazuLine() + "\n");
  std::string headless = WriteFile(dir + "/2.csv", AvazuLine() + "\n" + AvazuLine() + "\n");
  for (bool strict : {false, true}) {
    MalformedOptions malformed;
    malformed.strict = strict;
    ReadOutcome out = ReadWith(dir + "/*.csv", avazu, malformed);
    EXPECT_EQ(out.status.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(out.status.message().rfind(headless + ":1: bad Avazu header", 0), 0u) << out.status.message();
    EXPECT_EQ(out.rows, 1);  // the first file's row
  }
}

TEST(RowReaderTest, OverlongHeaderIsAnError) {
  std::string dir = TestDir();
  ParserOptions avazu;
  avazu.format = DataFormat::kAvazu;
  std::string path = WriteFile(dir + "/long.csv", std::string(AvazuHeader()) + std::string(500, ' ') + "\n" +
                                                      AvazuLine() + "\n");
  ReadOutcome out = ReadWith(path, avazu, {});
  EXPECT_EQ(out.status.message().rfind(path + ":1: header line of", 0), 0u) << out.status.message();
  EXPECT_EQ(out.stats.header_lines, 1);
}

TEST(RowReaderTest, MidFileReadersReportAbsoluteLineNumbers) {
  std::string dir = TestDir();
  std::string content;
  for (int i = 1; i <= 60; ++i) content += (i == 50 ? CriteoLine("5") : CriteoLine()) + "\n";
  std::string path = WriteFile(dir + "/t.txt", content);
  MalformedOptions strict;
  strict.strict = true;
  int errors = 0;
  for (int i = 0; i < 4; ++i) {
    ReadOutcome out = ReadWith(path, {}, strict, i, 4);
    if (out.status.ok()) continue;
    ++errors;
    EXPECT_EQ(out.status.message().rfind(path + ":50: label", 0), 0u) << out.status.message();
  }
  EXPECT_EQ(errors, 1);
}

}  // namespace
}  // namespace ctrps::worker
