#include "worker/data/line_reader.h"

#include <random>

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"

namespace ctrps::worker {
namespace {

struct ReadResult {
  std::vector<std::string> lines;
  std::vector<uint64_t> offsets;
  std::vector<bool> too_long;
  uint64_t end_offset = 0;
};

ReadResult ReadAll(const std::string& data, size_t max_read, LineReaderOptions options = {},
                   uint64_t start = 0) {
  LineReader reader(NewStringSource(data, max_read), start, options);
  ReadResult r;
  Line line;
  while (true) {
    auto more = reader.Next(&line);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    r.lines.emplace_back(line.text);
    r.offsets.push_back(line.offset);
    r.too_long.push_back(line.too_long);
  }
  r.end_offset = reader.offset();
  return r;
}

TEST(LineReaderTest, HandlesLfCrlfMissingFinalNewlineAndEmptyLines) {
  const std::string cases[] = {"", "\n", "a", "a\n", "a\r\nb\r\n", "a\nb", "a\r\nb\r", "\n\nx\n\n",
                               "one\r\n\r\ntwo", "x\ry\n"};
  for (const std::string& data : cases) {
    for (size_t max_read : {size_t{1}, size_t{2}, size_t{3}, size_t{1000}}) {
      ReadResult r = ReadAll(data, max_read);
      EXPECT_EQ(r.lines, testing::ExpectedLines(data)) << testing::ExpectedLines(data).size();
      EXPECT_EQ(r.end_offset, data.size());
    }
  }
}

// A UTF-8 byte order mark (as Windows tools write) is dropped from a
// file's first line only; offsets still count its bytes.
TEST(LineReaderTest, ByteOrderMarkAtFileStartIsNotData) {
  const std::string bom = "\xEF\xBB\xBF";
  for (size_t max_read : {size_t{1}, size_t{2}, size_t{1000}}) {
    ReadResult r = ReadAll(bom + "1\t2\r\n" + bom + "x\n", max_read);
    ASSERT_EQ(r.lines.size(), 2u);
    EXPECT_EQ(r.lines[0], "1\t2");
    EXPECT_EQ(r.lines[1], bom + "x");  // not at the file's start: data
    EXPECT_EQ(r.offsets[1], 8u);
    EXPECT_EQ(ReadAll(bom, max_read).lines, std::vector<std::string>{""});
  }
  // A reader opened mid-file (a partition) does not strip.
  EXPECT_EQ(ReadAll(bom + "a\n", 1000, {}, 50).lines[0], bom + "a");
}

TEST(LineReaderTest, OffsetsAreLineStartsInFileCoordinates) {
  ReadResult r = ReadAll("ab\ncde\r\n\nf", 2, {}, 100);
  ASSERT_EQ(r.offsets.size(), 4u);
  EXPECT_EQ(r.offsets[0], 100u);
  EXPECT_EQ(r.offsets[1], 103u);
  EXPECT_EQ(r.offsets[2], 108u);
  EXPECT_EQ(r.offsets[3], 109u);
  EXPECT_EQ(r.end_offset, 110u);
}

TEST(LineReaderTest, TooLongLinesAreFlaggedAndSkippedWholly) {
  LineReaderOptions options;
  options.read_buffer_bytes = 4096;
  options.max_line_bytes = 10;
  std::string long_line(50000, 'x');
  std::string data = "short\n" + long_line + "\nexactly10c\n" + "elevenchars\nend\n" + long_line;
  ReadResult r = ReadAll(data, 777, options);
  ASSERT_EQ(r.lines.size(), 6u);
  EXPECT_EQ(r.lines[0], "short");
  EXPECT_TRUE(r.too_long[1]);
  EXPECT_EQ(r.lines[1], std::string(64, 'x'));  // prefix for messages only
  EXPECT_EQ(r.lines[2], "exactly10c");
  EXPECT_FALSE(r.too_long[2]);
  EXPECT_TRUE(r.too_long[3]);
  EXPECT_EQ(r.lines[4], "end");
  EXPECT_TRUE(r.too_long[5]);  // the last line, no "\n"
  EXPECT_EQ(r.offsets[2], 6u + 50001u);
  EXPECT_EQ(r.end_offset, data.size());
}

TEST(LineReaderTest, SkipLineConsumesThroughNewline) {
  LineReader reader(NewStringSource("partial line\nnext\nlast", 3), 0, {});
  auto skipped = reader.SkipLine();
  ASSERT_TRUE(skipped.ok());
  EXPECT_TRUE(*skipped);
  EXPECT_EQ(reader.offset(), 13u);
  Line line;
  ASSERT_TRUE(*reader.Next(&line));
  EXPECT_EQ(line.text, "next");
  ASSERT_TRUE(*reader.SkipLine() == false);  // "last" has no newline
  EXPECT_EQ(reader.offset(), 22u);
  EXPECT_FALSE(*reader.Next(&line));
}

TEST(LineReaderTest, SourceErrorsPropagate) {
  LineReader reader(NewFailingSource(NewStringSource("a\nb\nc\n"), 3, Status::IOError("boom")), 0, {});
  Line line;
  ASSERT_TRUE(*reader.Next(&line));
  EXPECT_EQ(line.text, "a");
  auto next = reader.Next(&line);  // "b" is cut: its "\n" would be byte 4
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Status::Code::kIOError);
}

TEST(LineReaderTest, RandomContentMatchesReference) {
  std::mt19937 rng(7);
  const char alphabet[] = {'a', 'b', '\n', '\r', '\t', '\n'};
  for (int iter = 0; iter < 300; ++iter) {
    std::string data(rng() % 200, ' ');
    for (char& c : data) c = alphabet[rng() % 6];
    LineReaderOptions options;
    options.read_buffer_bytes = 4096;
    options.max_line_bytes = 1000;
    ReadResult r = ReadAll(data, 1 + rng() % 17, options);
    EXPECT_EQ(r.lines, testing::ExpectedLines(data));
  }
}

TEST(LineReaderOptionsTest, Validate) {
  LineReaderOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.read_buffer_bytes = 10;
  EXPECT_FALSE(options.Validate().ok());
  options = {};
  options.max_line_bytes = 0;
  EXPECT_NE(options.Validate().message().find("max_line_bytes"), std::string::npos);
}

}  // namespace
}  // namespace ctrps::worker
