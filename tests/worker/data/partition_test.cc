#include "worker/data/partition.h"

#include <algorithm>
#include <tuple>

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"
#include "worker/data/partition_reader.h"

namespace ctrps::worker {
namespace {

using testing::ExpectedLines;
using testing::TestDir;
using testing::WriteFile;
using testing::WriteGzip;

std::unique_ptr<PartitionReader> MustOpen(std::vector<InputFile> files, const PartitionReaderOptions& options) {
  return testing::MustOk(PartitionReader::Open(std::move(files), options));
}

// (file index, line text) of every line, in order.
using LineList = std::vector<std::pair<int, std::string>>;

PartitionReaderOptions ReaderOptions(int i, int n, GzipSplit split, int header_lines = 0) {
  PartitionReaderOptions options;
  options.partition.reader_index = i;
  options.partition.num_readers = n;
  options.partition.gzip_split = split;
  options.line.read_buffer_bytes = 4096;  // small, so buffers refill mid-file
  options.header_lines = header_lines;
  return options;
}

LineList ReadPartition(const std::vector<InputFile>& files, const PartitionReaderOptions& options,
                       int* headers = nullptr) {
  auto reader = PartitionReader::Open(files, options);
  EXPECT_TRUE(reader.ok());
  LineList out;
  InputLine line;
  while (true) {
    auto more = (*reader)->Next(&line);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    if (line.is_header) {
      if (headers != nullptr) ++*headers;
      continue;
    }
    out.emplace_back(line.file_index, std::string(line.text));
  }
  return out;
}

// Files exercising every edge: CRLF, no final newline, empty files, files
// smaller than the reader count, a long file, gzip files (also multi-member
// and one with a single line).
struct Fixture {
  std::vector<InputFile> files;
  LineList all_lines;  // every line of every file, in order
};

Fixture MakeFixture(const std::string& dir, bool with_gzip) {
  std::vector<std::pair<std::string, std::string>> contents = {
      {"a_crlf.txt", "a1\r\na2\r\na3 longer line\r\n"},
      {"b_empty.txt", ""},
      {"c_nofinal.txt", "c1\nc2\nc3"},
      {"d_tiny.txt", "d"},
      {"e_newline_only.txt", "\n"},
  };
  std::string big;
  for (int i = 0; i < 500; ++i) big += "e" + std::to_string(i) + std::string(i % 37, 'x') + (i % 3 ? "\n" : "\r\n");
  contents.emplace_back("f_big.txt", big);
  Fixture fx;
  int index = 0;
  auto add = [&](const std::string& name, const std::string& content, bool gzip, int members = 1) {
    std::string path = dir + "/" + name;
    if (gzip) {
      WriteGzip(path, content, members);
    } else {
      WriteFile(path, content);
    }
    InputFile f;
    f.path = path;
    f.gzip = gzip;
    f.size_bytes = testing::ReadFileBytes(path).size();
    fx.files.push_back(f);
    for (const std::string& l : ExpectedLines(content)) fx.all_lines.emplace_back(index, l);
    ++index;
  };
  for (auto& [name, content] : contents) add(name, content, false);
  if (with_gzip) {
    add("g1.gz", "g1a\ng1b\r\ng1c", true);
    add("g2.gz", big, true, 3);
    add("g3.gz", "only\n", true);
    add("h_after_gz.txt", "h1\nh2\n", false);
  }
  return fx;
}

LineList Sorted(LineList lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

class ExactlyOnceTest : public ::testing::TestWithParam<std::tuple<int, GzipSplit>> {};

TEST_P(ExactlyOnceTest, EveryLineReadOnceOverAllReaders) {
  const auto [n, split] = GetParam();
  Fixture fx = MakeFixture(TestDir(), /*with_gzip=*/true);
  LineList union_lines;
  for (int i = 0; i < n; ++i) {
    LineList part = ReadPartition(fx.files, ReaderOptions(i, n, split));
    union_lines.insert(union_lines.end(), part.begin(), part.end());
  }
  EXPECT_EQ(Sorted(union_lines), Sorted(fx.all_lines));
}

INSTANTIATE_TEST_SUITE_P(Readers, ExactlyOnceTest,
                         ::testing::Combine(::testing::Range(1, 8),
                                            ::testing::Values(GzipSplit::kWholeFilesBySize, GzipSplit::kLineModulo)),
                         [](const ::testing::TestParamInfo<std::tuple<int, GzipSplit>>& info) {
                           return std::to_string(std::get<0>(info.param)) + "_readers_" +
                                  (std::get<1>(info.param) == GzipSplit::kWholeFilesBySize ? "gzip_by_size"
                                                                                           : "gzip_line_modulo");
                         });

TEST(PartitionTest, ReadersKeepFileOrderWithinTheirPartition) {
  Fixture fx = MakeFixture(TestDir(), /*with_gzip=*/false);
  LineList one = ReadPartition(fx.files, ReaderOptions(0, 1, GzipSplit::kWholeFilesBySize));
  EXPECT_EQ(one, fx.all_lines);  // a single reader reads everything in order
  LineList concat;
  for (int i = 0; i < 3; ++i) {
    LineList part = ReadPartition(fx.files, ReaderOptions(i, 3, GzipSplit::kWholeFilesBySize));
    concat.insert(concat.end(), part.begin(), part.end());
  }
  EXPECT_EQ(concat, fx.all_lines);  // byte ranges are contiguous and ordered
}

TEST(PartitionTest, MoreReadersThanLinesAndBytes) {
  std::string dir = TestDir();
  InputFile f{WriteFile(dir + "/two.txt", "x\ny"), 3, false};
  int total = 0;
  for (int i = 0; i < 7; ++i) {
    LineList part = ReadPartition({f}, ReaderOptions(i, 7, GzipSplit::kWholeFilesBySize));
    EXPECT_LE(part.size(), 1u);
    total += static_cast<int>(part.size());
  }
  EXPECT_EQ(total, 2);
}

TEST(PartitionTest, HeaderGoesToTheOwnerOfOffsetZeroOrToAllGzipReaders) {
  std::string dir = TestDir();
  std::string content = "header\nr1\nr2\nr3\nr4\nr5\n";
  InputFile plain{WriteFile(dir + "/p.csv", content), content.size(), false};
  InputFile gz{WriteGzip(dir + "/q.csv.gz", content), 0, true};
  gz.size_bytes = testing::ReadFileBytes(gz.path).size();
  for (GzipSplit split : {GzipSplit::kWholeFilesBySize, GzipSplit::kLineModulo}) {
    int headers = 0;
    size_t rows = 0;
    for (int i = 0; i < 3; ++i) {
      rows += ReadPartition({plain, gz}, ReaderOptions(i, 3, split, /*header_lines=*/1), &headers).size();
    }
    EXPECT_EQ(rows, 10u);
    EXPECT_EQ(headers, split == GzipSplit::kLineModulo ? 1 + 3 : 2);
  }
}

TEST(PartitionTest, PlanSplitsBytesEvenlyAndDealsGzipRoundRobin) {
  std::vector<InputFile> files = {{"a", 100, false}, {"g0", 10, true}, {"b", 50, false},
                                  {"g1", 10, true},  {"g2", 10, true}};
  PartitionOptions options;
  options.num_readers = 2;
  options.reader_index = 1;
  std::vector<FileSlice> slices = PlanPartition(files, options);
  // Plain bytes 0..150: reader 1 owns [75, 150): a[75, 100) and b[0, 50); gzip g1 (ordinal 1).
  ASSERT_EQ(slices.size(), 3u);
  EXPECT_EQ(slices[0].file_index, 0);
  EXPECT_EQ(slices[0].begin_offset, 75u);
  EXPECT_EQ(slices[0].end_offset, 100u);
  EXPECT_EQ(slices[1].file_index, 2);
  EXPECT_EQ(slices[1].begin_offset, 0u);
  EXPECT_EQ(slices[1].end_offset, 50u);
  EXPECT_EQ(slices[2].file_index, 3);
  EXPECT_TRUE(slices[2].gzip);
}

// Uneven .gz files are dealt by size, so no worker reads most of the bytes
// while another idles (before: the k-th file to reader k mod N, here
// 200 vs 20 bytes for two readers).
TEST(PartitionTest, PlanDealsGzipFilesBySize) {
  std::vector<InputFile> files = {{"g0", 100, true}, {"g1", 10, true}, {"g2", 100, true},
                                  {"g3", 10, true},  {"p", 40, false}, {"g4", 0, true}};
  std::vector<uint64_t> load(2, 0);
  std::vector<int> owners(files.size(), 0);
  for (int i = 0; i < 2; ++i) {
    PartitionOptions options;
    options.num_readers = 2;
    options.reader_index = i;
    for (const FileSlice& s : PlanPartition(files, options)) {
      if (!s.gzip) continue;
      load[i] += files[s.file_index].size_bytes;
      ++owners[s.file_index];
    }
  }
  EXPECT_EQ(load[0], 110u);
  EXPECT_EQ(load[1], 110u);
  for (int f : {0, 1, 2, 3}) EXPECT_EQ(owners[f], 1) << "file " << f << " read once";
  EXPECT_EQ(owners[5], 0);  // empty: nobody's
  // Equal sizes: round-robin in list order, as before.
  std::vector<InputFile> same = {{"a", 10, true}, {"b", 10, true}, {"c", 10, true}};
  PartitionOptions options;
  options.num_readers = 2;
  options.reader_index = 1;
  auto slices = PlanPartition(same, options);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].file_index, 1);
}

TEST(PartitionOptionsTest, Validate) {
  PartitionOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.num_readers = 0;
  EXPECT_FALSE(options.Validate().ok());
  options.num_readers = 3;
  options.reader_index = 3;
  EXPECT_NE(options.Validate().message().find("reader_index"), std::string::npos);
}

// Reading k lines, saving Position, and continuing in a fresh reader after
// Seek gives exactly the lines the first reader would have read.
TEST(PartitionReaderTest, SeekToPositionResumesExactlyAtEveryLine) {
  Fixture fx = MakeFixture(TestDir(), /*with_gzip=*/true);
  for (int n : {1, 3}) {
    for (GzipSplit split : {GzipSplit::kWholeFilesBySize, GzipSplit::kLineModulo}) {
      for (int i = 0; i < n; ++i) {
        PartitionReaderOptions options = ReaderOptions(i, n, split);
        LineList full = ReadPartition(fx.files, options);
        auto reader = MustOpen(fx.files, options);
        InputLine line;
        for (size_t k = 0; k <= full.size(); k += (k < 20 ? 1 : 37)) {
          // Advance `reader` to k lines, then resume a fresh one from there.
          while (reader->Position().lines_consumed < k) ASSERT_TRUE(*reader->Next(&line));
          ReadPosition pos = reader->Position();
          EXPECT_EQ(pos.lines_consumed, k);
          auto resumed = MustOpen(fx.files, options);
          Status st = resumed->Seek(pos);
          ASSERT_TRUE(st.ok()) << st.ToString() << " at " << pos.ToString();
          EXPECT_EQ(resumed->Position(), pos);
          LineList rest;
          while (*resumed->Next(&line)) rest.emplace_back(line.file_index, std::string(line.text));
          EXPECT_EQ(rest, LineList(full.begin() + k, full.end())) << "n=" << n << " i=" << i << " k=" << k;
        }
      }
    }
  }
}

TEST(PartitionReaderTest, SeekRejectsForeignOrBrokenPositions) {
  std::string dir = TestDir();
  std::string content = "aaaa\nbbbb\ncccc\ndddd\n";
  std::vector<InputFile> files = {{WriteFile(dir + "/x.txt", content), content.size(), false}};
  auto reader = MustOpen(files, ReaderOptions(1, 2, GzipSplit::kWholeFilesBySize));
  ReadPosition pos;
  pos.file_index = 0;
  pos.byte_offset = 2;  // before this reader's range [10, 20)
  pos.line_in_file = 1;
  EXPECT_EQ(reader->Seek(pos).code(), Status::Code::kInvalidArgument);
  pos.byte_offset = 12;  // inside a line
  Status st = reader->Seek(pos);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("not the start of a line"), std::string::npos);
  pos.file_index = 5;
  EXPECT_EQ(reader->Seek(pos).code(), Status::Code::kInvalidArgument);
  InputLine line;
  EXPECT_EQ(reader->Next(&line).status().code(), Status::Code::kInvalidArgument);  // sticky
  ASSERT_TRUE(reader->Seek(reader->StartPosition()).ok());
  ASSERT_TRUE(*reader->Next(&line));
  EXPECT_EQ(line.text, "cccc");  // reader 1 of 2 owns the lines starting in [10, 20)
}

TEST(PartitionReaderTest, LocationGivesAbsoluteLineNumbersForMidFileReaders) {
  std::string dir = TestDir();
  std::string content;
  for (int i = 1; i <= 100; ++i) content += "line" + std::to_string(i) + "\n";
  std::vector<InputFile> files = {{WriteFile(dir + "/f.txt", content), content.size(), false}};
  for (int i = 0; i < 4; ++i) {
    auto reader = MustOpen(files, ReaderOptions(i, 4, GzipSplit::kWholeFilesBySize));
    InputLine line;
    while (*reader->Next(&line)) {
      std::string number(line.text.substr(4));
      EXPECT_EQ(reader->Location(line), files[0].path + ":" + number);
    }
  }
  // Beyond the scan budget the location falls back to the byte offset.
  PartitionReaderOptions options = ReaderOptions(3, 4, GzipSplit::kWholeFilesBySize);
  options.max_line_number_scan_bytes = 10;
  auto reader = MustOpen(files, options);
  InputLine line;
  ASSERT_TRUE(*reader->Next(&line));
  EXPECT_EQ(reader->Location(line), files[0].path + ":byte " + std::to_string(line.byte_offset));
}

}  // namespace
}  // namespace ctrps::worker
