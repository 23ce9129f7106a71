// Gzip restart points: the decoder records them as it reads; decompressing
// from any of them gives exactly the rest of the stream (member trailers
// checked, several members, padding); a reader position carries one, and a
// Seek with it never decompresses the file before it.
#include "worker/data/gzip_restart.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"
#include "worker/data/byte_source.h"
#include "worker/data/partition_reader.h"

namespace ctrps::worker {
namespace {

// Lines that compress a little, but not to nothing (so blocks are many).
std::string Lines(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "line " + std::to_string(i);
    for (int k = 0; k < 8; ++k) s += "\t" + std::to_string(rng() % 100000);
    s += "\n";
  }
  return s;
}

std::string ReadAll(ByteSource* src) {
  std::string out;
  char buf[7919];  // odd reads
  while (true) {
    auto got = src->Read(buf, sizeof(buf));
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || *got == 0) break;
    out.append(buf, *got);
  }
  return out;
}

TEST(GzipRestartTest, EveryPointResumesToTheRestOfTheStream) {
  const std::string dir = testing::TestDir();
  const std::string content = Lines(40000, 1);  // about 1.6 MB
  const std::string path = testing::WriteGzip(dir + "/a.gz", content, /*members=*/3);
  {
    std::ofstream pad(path, std::ios::app | std::ios::binary);  // zero padding after the last member
    pad << std::string(100, '\0');
  }
  auto index = std::make_shared<GzipRestartIndex>(64 << 10);
  auto decoder = NewGzipDecoder(std::move(OpenFileSource(path)).value(), path, index);
  ASSERT_EQ(ReadAll(decoder.get()), content);
  ASSERT_GE(index->size(), 10u);
  int member_starts = 0;
  for (uint64_t at = 0; at <= content.size(); at += 64 << 10) {
    std::optional<GzipRestartPoint> p = index->Before(at);
    if (!p) continue;
    // Through its encoding, as a checkpoint holds it.
    auto decoded = DecodeGzipRestartPoint(EncodeGzipRestartPoint(*p));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    member_starts += decoded->member_start;
    auto src = OpenGzipSourceAt(path, *decoded);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_EQ(ReadAll(src->get()), content.substr(p->uncompressed_offset))
        << "from uncompressed byte " << p->uncompressed_offset;
  }
  EXPECT_GE(member_starts, 1);
}

TEST(GzipRestartTest, DamagedPointsAreRefusedOrDetected) {
  const std::string dir = testing::TestDir();
  const std::string content = Lines(20000, 2);
  const std::string path = testing::WriteGzip(dir + "/b.gz", content);
  auto index = std::make_shared<GzipRestartIndex>(64 << 10);
  auto decoder = NewGzipDecoder(std::move(OpenFileSource(path)).value(), path, index);
  ASSERT_EQ(ReadAll(decoder.get()), content);
  auto p = index->Before(content.size() / 2);
  ASSERT_TRUE(p.has_value());
  std::string bytes = EncodeGzipRestartPoint(*p);
  EXPECT_FALSE(DecodeGzipRestartPoint(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_FALSE(DecodeGzipRestartPoint("").ok());
  // A wrong crc so far: the member's trailer check catches it.
  GzipRestartPoint bad = *p;
  bad.member_crc ^= 1;
  auto src = OpenGzipSourceAt(path, bad);
  ASSERT_TRUE(src.ok());
  std::string out;
  char buf[65536];
  Status last;
  while (true) {
    auto got = (*src)->Read(buf, sizeof(buf));
    if (!got.ok()) {
      last = got.status();
      break;
    }
    if (*got == 0) break;
  }
  EXPECT_EQ(last.code(), Status::Code::kCorruption) << last.ToString();
}

// The reader position of a checkpoint carries a restart point, and a Seek
// with it starts there: here the compressed bytes before it are destroyed
// and the resumed reader still reads every remaining line (before, a Seek
// inside a gzip file decompressed the file from its start).
TEST(GzipRestartTest, SeekWithARestartPointSkipsTheFileBeforeIt) {
  const std::string dir = testing::TestDir();
  const std::string content = Lines(60000, 3);
  const std::string path = testing::WriteGzip(dir + "/c.gz", content, /*members=*/2);
  std::vector<InputFile> files = {{path, std::filesystem::file_size(path), true}};
  PartitionReaderOptions options;
  options.gzip_restart_spacing_bytes = 64 << 10;
  auto reader = std::move(PartitionReader::Open(files, options)).value();
  InputLine line;
  for (int i = 0; i < 45000; ++i) ASSERT_TRUE(*reader->Next(&line));
  ReadPosition pos = reader->Position();
  pos.gzip_restart = reader->RestartPointBefore(pos);
  ASSERT_FALSE(pos.gzip_restart.empty());
  auto point = DecodeGzipRestartPoint(pos.gzip_restart);
  ASSERT_TRUE(point.ok());
  EXPECT_LE(point->uncompressed_offset, pos.byte_offset);
  EXPECT_GT(point->uncompressed_offset + (128 << 10), pos.byte_offset);
  std::vector<std::string> rest;
  while (*reader->Next(&line)) rest.emplace_back(line.text);
  ASSERT_EQ(rest.size(), 15000u);
  // Destroy the compressed bytes before the point (sizes unchanged).
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64);
    f << std::string(point->compressed_offset - 128, 'x');
  }
  auto resumed = std::move(PartitionReader::Open(files, options)).value();
  Status s = resumed->Seek(pos);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(resumed->Position(), pos);
  std::vector<std::string> got;
  while (true) {
    auto more = resumed->Next(&line);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    got.emplace_back(line.text);
  }
  EXPECT_EQ(got, rest);
  // Line numbers in messages still count from the file's start.
  auto again = std::move(PartitionReader::Open(files, options)).value();
  ASSERT_TRUE(again->Seek(pos).ok());
  ASSERT_TRUE(*again->Next(&line));
  EXPECT_EQ(again->Location(line), path + ":45001");
}

}  // namespace
}  // namespace ctrps::worker
