#include "worker/data/data_reader.h"

#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"
#include "worker/data/criteo_parser.h"

namespace ctrps::worker {
namespace {

using testing::CriteoLine;
using testing::TestDir;
using testing::WriteFile;
using testing::WriteGzip;

std::unique_ptr<DataReader> MustOpen(const DataReaderOptions& options) {
  return testing::MustOk(DataReader::Open(options));
}

// A Criteo file whose row r has C1 = hex(r), so rows can be told apart by
// their C1 key.
struct RowFile {
  std::string path;
  std::map<Key, int> row_of_key;  // C1 key -> row index
  int rows = 0;
};

std::string HexId(int r) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", r);
  return buf;
}

RowFile MakeRowFile(const std::string& path, int rows, bool gzip = false, int first_id = 0) {
  RowFile f;
  f.path = path;
  f.rows = rows;
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  std::string content;
  for (int r = 0; r < rows; ++r) {
    std::string line = CriteoLine((first_id + r) % 3 == 0 ? "1" : "0", {std::to_string(r % 50), "", "-1"}, {HexId(first_id + r)});
    content += line + "\n";
    float label;
    std::vector<Key> keys(39);
    std::vector<float> values(39);
    ParseError error;
    EXPECT_TRUE(parser.Parse(line, &label, keys.data(), values.data(), &error));
    f.row_of_key[keys[13]] = first_id + r;
  }
  if (gzip) {
    WriteGzip(path, content);
  } else {
    WriteFile(path, content);
  }
  return f;
}

DataReaderOptions Options(const std::string& input, int batch, int epochs = 1, int64_t shuffle = 0,
                          uint64_t seed = 0) {
  DataReaderOptions options;
  options.input = input;
  options.batching.batch_size_rows = batch;
  options.batching.num_epochs = epochs;
  options.batching.shuffle_buffer_rows = shuffle;
  options.batching.shuffle_seed = seed;
  options.prefetch_batches = 2;
  return options;
}

// Row ids of every batch until the end (or an error, returned in *status).
std::vector<std::vector<int>> ReadBatches(DataReader* reader, const std::map<Key, int>& row_of_key,
                                          int max_batches = 1 << 30, Status* status = nullptr) {
  std::vector<std::vector<int>> out;
  Batch batch;
  while (static_cast<int>(out.size()) < max_batches) {
    auto more = reader->Next(&batch);
    if (!more.ok()) {
      if (status != nullptr) *status = more.status();
      break;
    }
    if (!*more) break;
    EXPECT_EQ(batch.num_fields, 39);
    EXPECT_EQ(batch.keys.size(), static_cast<size_t>(batch.size()) * 39);
    EXPECT_EQ(batch.values.size(), static_cast<size_t>(batch.size()) * 39);
    std::vector<int> ids;
    for (int b = 0; b < batch.size() && !row_of_key.empty(); ++b) {
      auto it = row_of_key.find(batch.keys[b * 39 + 13]);
      EXPECT_NE(it, row_of_key.end());
      if (it == row_of_key.end()) {
        ids.push_back(-1);
        continue;
      }
      ids.push_back(it->second);
      EXPECT_EQ(batch.labels[b], it->second % 3 == 0 ? 1.0f : 0.0f);
    }
    out.push_back(ids);
  }
  return out;
}

std::vector<int> Flatten(const std::vector<std::vector<int>>& batches) {
  std::vector<int> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(DataReaderTest, BatchesInFileOrderWithPartialLastBatch) {
  RowFile f = MakeRowFile(TestDir() + "/t.txt", 1000);
  auto reader = DataReader::Open(Options(f.path, 64));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto batches = ReadBatches(reader->get(), f.row_of_key);
  ASSERT_EQ(batches.size(), 16u);
  EXPECT_EQ(batches.back().size(), 1000u - 15 * 64);
  EXPECT_EQ(Flatten(batches), Iota(1000));
  Batch batch;
  EXPECT_FALSE(*(*reader)->Next(&batch));  // stays at the end
  ReadStats stats = (*reader)->stats();
  EXPECT_EQ(stats.rows, 1000);
  EXPECT_EQ(stats.lines, 1000);
  EXPECT_EQ(stats.malformed_lines(), 0);
}

TEST(DataReaderTest, EpochsRereadAndDropPartial) {
  RowFile f = MakeRowFile(TestDir() + "/t.txt", 100);
  DataReaderOptions options = Options(f.path, 30, 3);
  options.batching.drop_last_partial_batch = true;
  auto reader = MustOpen(options);
  auto batches = ReadBatches(reader.get(), f.row_of_key);
  ASSERT_EQ(batches.size(), 9u);  // 3 full batches per epoch; the 10 left over are dropped
  std::vector<int> epoch = Flatten({batches[0], batches[1], batches[2]});
  EXPECT_EQ(epoch, std::vector<int>(Iota(90)));
  EXPECT_EQ(Flatten({batches[3], batches[4], batches[5]}), epoch);
  EXPECT_EQ(reader->stats().rows, 300);
}

TEST(DataReaderTest, ShuffleIsADeterministicPermutationPerEpoch) {
  RowFile f = MakeRowFile(TestDir() + "/t.txt", 500);
  auto read = [&](uint64_t seed, int64_t window) {
    auto reader = MustOpen(Options(f.path, 32, 2, window, seed));
    return Flatten(ReadBatches(reader.get(), f.row_of_key));
  };
  std::vector<int> a = read(7, 128);
  ASSERT_EQ(a.size(), 1000u);
  EXPECT_EQ(a, read(7, 128));  // same seed, same order
  EXPECT_NE(a, read(8, 128));
  std::vector<int> e0(a.begin(), a.begin() + 500), e1(a.begin() + 500, a.end());
  EXPECT_NE(e0, Iota(500));
  EXPECT_NE(e0, e1);  // each epoch its own order
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, Iota(500));
  EXPECT_EQ(e1, Iota(500));
  // A window of 128 only mixes within itself.
  std::vector<int> first(a.begin(), a.begin() + 128);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, Iota(128));
  // A window larger than the data permutes all of it.
  std::vector<int> whole = read(7, 1 << 20);
  EXPECT_NE(std::vector<int>(whole.begin(), whole.begin() + 500), Iota(500));
}

// Stopping after k batches, saving Position and resuming in a fresh reader
// continues with exactly the batches the first would have returned.
TEST(DataReaderTest, SeekToPositionResumesExactly) {
  std::string dir = TestDir();
  RowFile f = MakeRowFile(dir + "/a.txt", 150);
  RowFile g = MakeRowFile(dir + "/b.gz", 90, /*gzip=*/true, /*first_id=*/1000);
  std::map<Key, int> keys = f.row_of_key;
  keys.insert(g.row_of_key.begin(), g.row_of_key.end());
  for (int64_t window : {int64_t{0}, int64_t{50}, int64_t{64}}) {
    DataReaderOptions options = Options(dir + "/a.txt," + dir + "/b.gz", 16, 2, window, 3);
    auto full_reader = MustOpen(options);
    auto full = ReadBatches(full_reader.get(), keys);
    ASSERT_EQ(Flatten(full).size(), 480u);
    for (size_t k = 0; k <= full.size(); ++k) {
      auto first = MustOpen(options);
      auto head = ReadBatches(first.get(), keys, static_cast<int>(k));
      DataReaderPosition pos = first->Position();
      EXPECT_EQ(pos.rows_returned, static_cast<int64_t>(Flatten(head).size()));
      auto second = MustOpen(options);
      Status st = second->Seek(pos);
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(second->Position(), pos);
      auto tail = ReadBatches(second.get(), keys);
      head.insert(head.end(), tail.begin(), tail.end());
      EXPECT_EQ(head, full) << "window " << window << ", resumed after " << k << " batches at " << pos.ToString();
    }
    // Seeking back in the same reader works too.
    auto reader = MustOpen(options);
    DataReaderPosition start = reader->Position();
    ReadBatches(reader.get(), keys, 5);
    ASSERT_TRUE(reader->Seek(start).ok());
    EXPECT_EQ(ReadBatches(reader.get(), keys), full);
  }
}

TEST(DataReaderTest, SeekRejectsAShuffledPositionWithoutShuffle) {
  RowFile f = MakeRowFile(TestDir() + "/t.txt", 100);
  auto shuffled = MustOpen(Options(f.path, 10, 1, 40));
  ReadBatches(shuffled.get(), f.row_of_key, 1);
  auto plain = MustOpen(Options(f.path, 10));
  Status st = plain->Seek(shuffled->Position());
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  Batch batch;
  EXPECT_EQ(plain->Next(&batch).status().code(), Status::Code::kInvalidArgument);  // stays failed
}

TEST(DataReaderTest, ReadersPartitionTheInputExactlyOnce) {
  std::string dir = TestDir();
  RowFile f = MakeRowFile(dir + "/a.txt", 333);
  RowFile g = MakeRowFile(dir + "/b.txt.gz", 77, true, 1000);
  RowFile h = MakeRowFile(dir + "/c.txt.gz", 5, true, 2000);
  std::map<Key, int> keys = f.row_of_key;
  keys.insert(g.row_of_key.begin(), g.row_of_key.end());
  keys.insert(h.row_of_key.begin(), h.row_of_key.end());
  for (int n : {1, 2, 5}) {
    std::vector<int> all;
    for (int i = 0; i < n; ++i) {
      DataReaderOptions options = Options(dir + "/*", 50, 1, 20, 1);
      options.partition.reader_index = i;
      options.partition.num_readers = n;
      auto reader = MustOpen(options);
      std::vector<int> part = Flatten(ReadBatches(reader.get(), keys));
      all.insert(all.end(), part.begin(), part.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<int> expected;
    for (auto& [key, id] : keys) expected.push_back(id);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(all, expected) << n << " readers";
  }
}

TEST(DataReaderTest, DestroyMidStreamDoesNotHang) {
  RowFile f = MakeRowFile(TestDir() + "/t.txt", 2000);
  for (int64_t window : {int64_t{0}, int64_t{100000}}) {
    auto reader = MustOpen(Options(f.path, 8, /*epochs=*/0, window));
    EXPECT_EQ(ReadBatches(reader.get(), f.row_of_key, 3).size(), 3u);
    reader.reset();  // the producer is blocked on a full queue or mid-window
  }
  auto untouched = MustOpen(Options(f.path, 8, 0));
  untouched.reset();
}

TEST(DataReaderTest, BackgroundErrorsSurfaceInStreamOrder) {
  std::string dir = TestDir();
  std::string content;
  for (int r = 0; r < 100; ++r) content += (r == 57 ? CriteoLine("x") : CriteoLine()) + "\n";
  std::string path = WriteFile(dir + "/bad.txt", content);
  DataReaderOptions options = Options(path, 10);
  options.malformed.strict = true;
  auto reader = MustOpen(options);
  Batch batch;
  for (int b = 0; b < 5; ++b) ASSERT_TRUE(*reader->Next(&batch)) << b;  // rows 0-49 are fine
  auto failed = reader->Next(&batch);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), path + ":58: label: expected 0 or 1, got 'x'");
  EXPECT_EQ(reader->Next(&batch).status().message(), failed.status().message());  // sticky

  // Lenient mode reads past it and counts it.
  options.malformed.strict = false;
  auto lenient = MustOpen(options);
  int rows = 0;
  while (*lenient->Next(&batch)) rows += batch.size();
  EXPECT_EQ(rows, 99);
  EXPECT_EQ(lenient->stats().count(MalformedReason::kBadLabel), 1);

  // A truncated gzip file is a Corruption naming the file.
  std::string gz = testing::ReadFileBytes(WriteGzip(dir + "/cut.gz", content));
  std::string cut = WriteFile(dir + "/cut.gz", gz.substr(0, gz.size() / 2));
  auto broken = MustOpen(Options(cut, 10));
  Status st;
  ReadBatches(broken.get(), {}, 1 << 30, &st);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find("cut.gz"), std::string::npos) << st.message();
}

TEST(DataReaderTest, OpenFailsClearly) {
  DataReaderOptions options = Options(TestDir() + "/none_*.txt", 10);
  EXPECT_EQ(DataReader::Open(options).status().code(), Status::Code::kNotFound);
  options.batching.batch_size_rows = 0;
  Status st = DataReader::Open(options).status();
  EXPECT_NE(st.message().find("batching: batch_size_rows"), std::string::npos) << st.message();
  options = Options("x", 10);
  options.prefetch_batches = 0;
  EXPECT_NE(options.Validate().message().find("prefetch_batches"), std::string::npos);
  options = Options("", 10);
  EXPECT_FALSE(options.Validate().ok());
}

TEST(DataReaderTest, EndlessEpochsOverAPartitionWithoutBatchesEnd) {
  RowFile f = MakeRowFile(TestDir() + "/two_rows.txt", 2);
  int endless = 0, ended = 0;
  for (int i = 0; i < 5; ++i) {  // only two of the readers own a line
    DataReaderOptions options = Options(f.path, 10, /*epochs=*/0);
    options.partition.reader_index = i;
    options.partition.num_readers = 5;
    auto reader = MustOpen(options);
    Batch batch;
    int batches = 0;
    while (*reader->Next(&batch) && batches < 50) ++batches;
    // Endless where there is data, over at once where there is none.
    endless += batches == 50;
    ended += batches == 0;
  }
  EXPECT_EQ(endless, 2);
  EXPECT_EQ(ended, 3);
  DataReaderOptions options = Options(f.path, 10, /*epochs=*/0, /*shuffle=*/4);
  options.batching.drop_last_partial_batch = true;  // 2 rows never fill a batch of 10
  auto reader = MustOpen(options);
  Batch batch;
  EXPECT_FALSE(*reader->Next(&batch));
}

TEST(ReadAllBatchesTest, ReadsTheWholePartitionOnceInOrder) {
  RowFile f = MakeRowFile(TestDir() + "/eval.txt", 250);
  DataReaderOptions options = Options(f.path, 100, /*epochs=*/5, /*shuffle=*/64);
  ReadStats stats;
  auto batches = ReadAllBatches(options, &stats);
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  ASSERT_EQ(batches->size(), 3u);
  EXPECT_EQ((*batches)[2].size(), 50);
  std::vector<int> ids;
  for (const Batch& b : *batches) {
    for (int r = 0; r < b.size(); ++r) ids.push_back(f.row_of_key.at(b.keys[r * 39 + 13]));
  }
  EXPECT_EQ(ids, Iota(250));
  EXPECT_EQ(stats.rows, 250);
}

}  // namespace
}  // namespace ctrps::worker
