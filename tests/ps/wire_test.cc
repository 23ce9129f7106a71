#include <random>

#include <gtest/gtest.h>

#include "ps/wire.h"

namespace ctrps::ps {
namespace {

std::vector<char> Sample() {
  MessageBuilder b(MessageKind::kPush, kFlagTraining, 42);
  b.SetBlob("hello", 5);
  b.AddSlice(3, 2, 2, true, true);
  b.AddSlice(7, 3, 1, true, false);
  b.Finish();
  b.keys(0)[0] = 11;
  b.keys(0)[1] = 12;
  for (int i = 0; i < 4; ++i) b.data(0)[i] = 0.5f * i;
  b.keys(1)[0] = 99;
  return b.Take();
}

TEST(WireTest, RoundTrips) {
  std::vector<char> bytes = Sample();
  DecodedMessage d;
  ASSERT_TRUE(DecodeMessage(&bytes, &d).ok());
  EXPECT_EQ(d.kind, MessageKind::kPush);
  EXPECT_EQ(d.flags, kFlagTraining);
  EXPECT_EQ(d.step, 42u);
  EXPECT_EQ(std::string(d.blob, d.blob_bytes), "hello");
  ASSERT_EQ(d.slices.size(), 2u);
  EXPECT_EQ(d.slices[0].table, 3);
  EXPECT_EQ(d.slices[0].keys[1], 12u);
  EXPECT_EQ(d.slices[0].data[3], 1.5f);
  EXPECT_EQ(d.slices[1].keys[0], 99u);
  EXPECT_EQ(d.slices[1].data, nullptr);
}

TEST(WireTest, EveryTruncationIsCorruption) {
  const std::vector<char> good = Sample();
  for (size_t len = 0; len < good.size(); ++len) {
    std::vector<char> bytes(good.begin(), good.begin() + len);
    DecodedMessage d;
    Status s = DecodeMessage(&bytes, &d);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << "length " << len;
  }
  std::vector<char> longer = good;
  longer.resize(good.size() + 8);
  DecodedMessage d;
  EXPECT_EQ(DecodeMessage(&longer, &d).code(), Status::Code::kCorruption);
}

TEST(WireTest, RandomCorruptionNeverCrashes) {
  const std::vector<char> good = Sample();
  std::mt19937 rng(5);
  int rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::vector<char> bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    DecodedMessage d;
    Status s = DecodeMessage(&bytes, &d);
    if (!s.ok()) {
      ++rejected;
      continue;
    }
    // Whatever decoded must lie inside the buffer.
    const char* lo = bytes.data();
    const char* hi = lo + bytes.size();
    for (const WireSlice& sl : d.slices) {
      if (sl.keys) {
        EXPECT_LE(reinterpret_cast<const char*>(sl.keys + sl.n), hi);
        EXPECT_GE(reinterpret_cast<const char*>(sl.keys), lo);
      }
      if (sl.data) {
        EXPECT_LE(reinterpret_cast<const char*>(sl.data + sl.n * sl.width), hi);
      }
    }
  }
  EXPECT_GT(rejected, 1000);
}

TEST(WireTest, BadMagicAndKindAreCorruption) {
  std::vector<char> bytes = Sample();
  bytes[0] ^= 1;
  DecodedMessage d;
  EXPECT_EQ(DecodeMessage(&bytes, &d).code(), Status::Code::kCorruption);
  bytes = Sample();
  bytes[4] = 99;
  EXPECT_EQ(DecodeMessage(&bytes, &d).code(), Status::Code::kCorruption);
}

TEST(WireTest, TableStatsRoundTripAndMalformedListsAreCorruption) {
  std::vector<storage::TableStats> in(2);
  in[0].table_id = 3;
  in[1].table_id = 200;
  auto fields = [](storage::TableStats& t) {
    return std::vector<uint64_t*>{&t.rows, &t.bytes, &t.lookups, &t.created, &t.dram_rows,
                                  &t.dram_hits, &t.dram_misses, &t.evictions, &t.writebacks,
                                  &t.admitted, &t.rejected_lookups, &t.dropped_updates,
                                  &t.evicted_stale, &t.evicted_rare};
  };
  uint64_t v = 1;
  for (storage::TableStats& t : in)
    for (uint64_t* f : fields(t)) *f = (v++) * 0x100000001ull;  // distinct, wider than 32 bits
  const std::string blob = EncodeTableStats(in);
  std::vector<storage::TableStats> out;
  ASSERT_TRUE(DecodeTableStats(blob.data(), blob.size(), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].table_id, in[i].table_id);
    const auto got = fields(out[i]), want = fields(in[i]);
    for (size_t f = 0; f < want.size(); ++f) EXPECT_EQ(*got[f], *want[f]) << "table " << i << " field " << f;
  }
  for (size_t len = 0; len < blob.size(); ++len) {
    std::vector<storage::TableStats> t;
    EXPECT_EQ(DecodeTableStats(blob.data(), len, &t).code(), Status::Code::kCorruption) << len;
  }
  std::string longer = blob + std::string(8, '\0');
  EXPECT_EQ(DecodeTableStats(longer.data(), longer.size(), &out).code(), Status::Code::kCorruption);
  std::string huge = blob;
  huge[2] = 0x7f;  // count far beyond the tables there can be
  EXPECT_EQ(DecodeTableStats(huge.data(), huge.size(), &out).code(), Status::Code::kCorruption);
}

TEST(WireTest, TableStatsSumCountersAndKeepTheId) {
  storage::TableStats a, b;
  a.table_id = 4;
  a.rows = 10;
  a.admitted = 3;
  a.dram_hits = 7;
  b.table_id = 9;
  b.rows = 5;
  b.evicted_rare = 2;
  storage::AddTableStats(b, &a);
  EXPECT_EQ(a.table_id, 4);
  EXPECT_EQ(a.rows, 15u);
  EXPECT_EQ(a.admitted, 3u);
  EXPECT_EQ(a.dram_hits, 7u);
  EXPECT_EQ(a.evicted_rare, 2u);
}

}  // namespace
}  // namespace ctrps::ps
