#include "worker/data/byte_source.h"

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"

namespace ctrps::worker {
namespace {

using testing::TestDir;
using testing::WriteFile;
using testing::WriteGzip;

StatusOr<std::string> Drain(ByteSource* source, size_t chunk = 7) {
  std::string out;
  std::string buf(chunk, '\0');
  while (true) {
    ASSIGN_OR_RETURN(size_t got, source->Read(buf.data(), chunk));
    if (got == 0) return out;
    out.append(buf.data(), got);
  }
}

std::string Payload(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += std::to_string(i * 2654435761u % 1000003) + "\t";
  s.resize(n);
  return s;
}

TEST(FileSourceTest, ReadsFromOffset) {
  std::string dir = TestDir();
  std::string path = WriteFile(dir + "/a.txt", "hello world");
  auto source = OpenFileSource(path, 6);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto text = Drain(source->get());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "world");
}

TEST(FileSourceTest, MissingFileIsNotFound) {
  auto source = OpenFileSource(TestDir() + "/nope.txt");
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kNotFound);
  EXPECT_NE(source.status().message().find("nope.txt"), std::string::npos);
}

TEST(GzipSourceTest, DecodesSingleAndConcatenatedMembers) {
  std::string dir = TestDir();
  std::string payload = Payload(300000);
  for (int members : {1, 3}) {
    std::string path = WriteGzip(dir + "/m" + std::to_string(members) + ".gz", payload, members);
    auto source = OpenGzipSource(path);
    ASSERT_TRUE(source.ok());
    auto text = Drain(source->get(), 65536);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    EXPECT_EQ(*text, payload) << members << " members";
  }
}

TEST(GzipSourceTest, EmptyPayload) {
  std::string path = WriteGzip(TestDir() + "/empty.gz", "");
  auto source = OpenGzipSource(path);
  ASSERT_TRUE(source.ok());
  auto text = Drain(source->get());
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "");
}

TEST(GzipSourceTest, TruncatedStreamIsCorruption) {
  std::string dir = TestDir();
  std::string full = testing::ReadFileBytes(WriteGzip(dir + "/full.gz", Payload(100000)));
  for (size_t keep : {size_t{2}, size_t{10}, full.size() / 2, full.size() - 4}) {
    auto source = NewGzipDecoder(NewStringSource(full.substr(0, keep)), "cut.gz");
    auto text = Drain(source.get(), 4096);
    ASSERT_FALSE(text.ok()) << "kept " << keep;
    EXPECT_EQ(text.status().code(), Status::Code::kCorruption);
    EXPECT_NE(text.status().message().find("cut.gz"), std::string::npos);
  }
}

TEST(GzipSourceTest, TrailingGarbageAndBitFlipsAreCorruption) {
  std::string full = testing::ReadFileBytes(WriteGzip(TestDir() + "/x.gz", Payload(5000)));
  auto garbage = NewGzipDecoder(NewStringSource(full + "not gzip"), "g.gz");
  auto bad = Drain(garbage.get());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("trailing garbage"), std::string::npos) << bad.status().message();
  // Zero padding after a member (tape/block devices) is not garbage, even
  // between members and across read boundaries (gzip -d ignores it too).
  const std::string zeros(3000, '\0');
  for (size_t max_read : {size_t{7}, size_t{1} << 20}) {
    auto padded = NewGzipDecoder(NewStringSource(full + zeros + full + zeros, max_read), "p.gz");
    auto text = Drain(padded.get());
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    EXPECT_EQ(*text, Payload(5000) + Payload(5000));
  }
  std::string flipped = full;
  flipped[flipped.size() - 6] ^= 0x5a;  // inside the CRC32 trailer
  auto crc = NewGzipDecoder(NewStringSource(flipped), "crc.gz");
  EXPECT_EQ(Drain(crc.get()).status().code(), Status::Code::kCorruption);
}

TEST(IsGzipFileTest, UsesMagicBytesNotExtension) {
  std::string dir = TestDir();
  EXPECT_TRUE(*IsGzipFile(WriteGzip(dir + "/data.txt", "a\n")));
  EXPECT_FALSE(*IsGzipFile(WriteFile(dir + "/data.gz", "plain\n")));
  EXPECT_FALSE(*IsGzipFile(WriteFile(dir + "/one", "\x1f")));
  EXPECT_FALSE(*IsGzipFile(WriteFile(dir + "/zero", "")));
}

TEST(FailingSourceTest, FailsAfterBudget) {
  auto source = NewFailingSource(NewStringSource("abcdefgh"), 5, Status::IOError("disk gone"));
  char buf[16];
  auto got = source->Read(buf, 16);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 5u);
  auto next = source->Read(buf, 16);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().message(), "disk gone");
}

}  // namespace
}  // namespace ctrps::worker
