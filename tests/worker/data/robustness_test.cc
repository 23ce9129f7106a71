// Random bytes and mutated valid lines must never crash, hang, or produce a
// row that breaks the batch contract; every line must be accounted for.
#include <random>

#include <gtest/gtest.h>

#include "tests/worker/data/fuzz_one_input.h"
#include "tests/worker/data/test_util.h"
#include "worker/data/data_reader.h"

namespace ctrps::worker {
namespace {

using testing::FuzzCounts;
using testing::FuzzOneInput;

std::unique_ptr<DataReader> MustOpen(const DataReaderOptions& options) {
  return testing::MustOk(DataReader::Open(options));
}

std::string Mutate(std::string s, std::mt19937_64& rng) {
  static const char kSpecial[] = {'\t', ',', ':', ' ', '\n', '\r', '\0', '\x7f', '\xff', '\xc3', '-', '+', '9'};
  int edits = 1 + rng() % 4;
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 5) {
      case 0:
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(s.begin() + pos, kSpecial[rng() % sizeof(kSpecial)]);
        break;
      case 2:
        if (!s.empty()) s.erase(pos, 1 + rng() % 8);
        break;
      case 3:
        s.insert(pos, s.substr(rng() % (s.size() + 1), rng() % 20));
        break;
      default:
        if (!s.empty()) s[pos] = kSpecial[rng() % sizeof(kSpecial)];
        break;
    }
  }
  return s;
}

std::vector<std::string> Seeds() {
  return {testing::CriteoLine("1", {"5", "", "-2", "100000"}, {"3a171ecb", "", "ABCDEF01"}),
          testing::AvazuLine(), testing::AvazuHeader(), "1 0:abc:1 3:17:0.5 4:x:-2e-1"};
}

TEST(RobustnessTest, RandomBytesNeverBreakTheContract) {
  std::mt19937_64 rng(2024);
  FuzzCounts total;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string data(rng() % 600, '\0');
    const int alphabet = iter % 3;  // all bytes, printable-ish, separators-heavy
    for (char& c : data) {
      if (alphabet == 0) c = static_cast<char>(rng());
      if (alphabet == 1) c = static_cast<char>(0x20 + rng() % 0x60);
      if (alphabet == 2) c = "0123456789abcdef\t,: \n-\r"[rng() % 23];
    }
    FuzzCounts counts = FuzzOneInput(data);
    EXPECT_EQ(counts.invariant_errors, 0) << iter;
    total.lines += counts.lines;
  }
  EXPECT_GT(total.lines, 3000);
}

TEST(RobustnessTest, MutatedValidLinesNeverBreakTheContract) {
  std::mt19937_64 rng(99);
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::string> seeds = Seeds();
    std::string line = Mutate(seeds[iter % seeds.size()], rng);
    FuzzCounts counts = FuzzOneInput(line);
    ASSERT_EQ(counts.invariant_errors, 0) << QuoteForMessage(line, 200);
    parsed += counts.parsed;
  }
  EXPECT_GT(parsed, 1000);  // many mutations stay valid (e.g. a changed hex digit)
}

TEST(RobustnessTest, DataReaderAccountsForEveryLineOfGarbageFiles) {
  std::string dir = testing::TestDir();
  std::mt19937_64 rng(5);
  std::string all;
  for (int file = 0; file < 4; ++file) {
    std::string content;
    for (int l = 0; l < 300; ++l) {
      std::vector<std::string> seeds = Seeds();
      content += (rng() % 2 ? Mutate(seeds[0], rng) : seeds[0]) + (rng() % 4 ? "\n" : "\r\n");
    }
    if (file % 2) {
      testing::WriteGzip(dir + "/f" + std::to_string(file), content);
    } else {
      testing::WriteFile(dir + "/f" + std::to_string(file), content);
    }
    all += content;
    if (all.back() != '\n') all += '\n';
  }
  const int64_t expected_lines = static_cast<int64_t>(testing::ExpectedLines(all).size());
  for (int n : {1, 3}) {
    for (GzipSplit split : {GzipSplit::kWholeFilesBySize, GzipSplit::kLineModulo}) {
      ReadStats sum;
      for (int i = 0; i < n; ++i) {
        DataReaderOptions options;
        options.input = dir + "/f*";
        options.partition = {i, n, split};
        options.line.max_line_bytes = 350;
        options.batching.batch_size_rows = 17;
        options.batching.shuffle_buffer_rows = 50;
        auto reader = MustOpen(options);
        Batch batch;
        int64_t rows = 0;
        while (true) {
          auto more = reader->Next(&batch);
          ASSERT_TRUE(more.ok()) << more.status().ToString();
          if (!*more) break;
          rows += batch.size();
          for (int b = 0; b < batch.size(); ++b) {
            for (int f = 0; f < 39; ++f) ASSERT_EQ(KeyTable(batch.keys[b * 39 + f]), f);
          }
        }
        ReadStats stats = reader->stats();
        EXPECT_EQ(stats.rows, rows);
        EXPECT_EQ(stats.lines, stats.rows + stats.header_lines + stats.malformed_lines());
        sum.Add(stats);
      }
      EXPECT_EQ(sum.lines, expected_lines) << n << " readers";
      EXPECT_GT(sum.malformed_lines(), 0);
      EXPECT_GT(sum.rows, 0);
    }
  }
}

}  // namespace
}  // namespace ctrps::worker
