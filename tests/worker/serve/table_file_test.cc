// Table files: exact fp32, bounded fp16/int8 error, lookups, and every kind
// of damage detected at open with a message naming the file.
#include "worker/serve/table_file.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <functional>
#include <random>

#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::worker::serve {
namespace {

using testing::TmpDir;

struct Rows {
  std::vector<Key> keys;
  std::vector<float> values;
};

Rows RandomRows(int table, size_t n, int width, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Rows r;
  std::vector<uint64_t> h(n);
  for (auto& x : h) x = rng() & kKeyHashMask;
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  for (uint64_t x : h) r.keys.push_back(MakeKey(table, x));
  std::normal_distribution<float> nd(0.0f, 0.3f);
  r.values.resize(r.keys.size() * width);
  for (float& v : r.values) v = nd(rng);
  return r;
}

StatusOr<MappedTable> WriteAndOpen(const std::string& path, const Rows& r, int table, int width,
                                   TableDtype dtype, TableEntry* e,
                                   KeyEncoding keys = KeyEncoding::kU64) {
  RETURN_IF_ERROR(WriteTableFile(path, table, width, dtype, r.keys.data(), r.keys.size(),
                                 r.values.data(), e, keys));
  return MappedTable::Open(path, *e);
}

class TableFileKeys : public ::testing::TestWithParam<KeyEncoding> {};

TEST_P(TableFileKeys, Fp32IsExactAndLookupsFindEveryKey) {
  const std::string dir = TmpDir(GetParam() == KeyEncoding::kU64 ? "fp32_u64" : "fp32_packed");
  std::filesystem::create_directories(dir);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{5000}}) {
    Rows r = RandomRows(3, n, 9, n);
    TableEntry e;
    auto t = WriteAndOpen(dir + "/t.emb", r, 3, 9, TableDtype::kFloat32, &e, GetParam());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->rows(), r.keys.size());
    EXPECT_EQ(t->key_encoding(), GetParam());
    EXPECT_EQ(e.file_bytes, std::filesystem::file_size(dir + "/t.emb"));
    std::vector<float> row(9);
    for (size_t i = 0; i < r.keys.size(); ++i) {
      ASSERT_EQ(t->KeyAt(i), r.keys[i]) << i;
      ASSERT_EQ(t->Find(r.keys[i]), static_cast<int64_t>(i));
      ASSERT_TRUE(t->Lookup(r.keys[i], row.data()));
      for (int k = 0; k < 9; ++k) ASSERT_EQ(row[k], r.values[i * 9 + k]);
    }
    // Absent keys: neighbours of present ones, other tables, extremes.
    std::mt19937_64 rng(99);
    for (int i = 0; i < 2000; ++i) {
      const Key k = MakeKey(3, rng() & kKeyHashMask);
      if (std::binary_search(r.keys.begin(), r.keys.end(), k)) continue;
      ASSERT_EQ(t->Find(k), -1);
    }
    EXPECT_EQ(t->Find(MakeKey(3, 0)), r.keys.empty() || r.keys[0] != MakeKey(3, 0) ? -1 : 0);
    EXPECT_EQ(t->Find(MakeKey(3, kKeyHashMask)),
              r.keys.empty() || r.keys.back() != MakeKey(3, kKeyHashMask)
                  ? -1
                  : static_cast<int64_t>(r.keys.size() - 1));
    EXPECT_FALSE(t->Lookup(MakeKey(4, 1), row.data()));
    for (float v : row) EXPECT_EQ(v, 0.0f);
    // A present key's hash in another table (packed keys store no table bits).
    for (size_t i = 0; i < r.keys.size(); i += 97)
      for (int other : {0, 2, 4, 255}) ASSERT_EQ(t->Find(MakeKey(other, KeyHash(r.keys[i]))), -1);
  }
}

// Keys crowded into few buckets (hashes sharing their top bits): lookups
// search within a bucket, present and absent keys alike.
TEST_P(TableFileKeys, CrowdedBucketsAndExtremeKeys) {
  const std::string dir = TmpDir(GetParam() == KeyEncoding::kU64 ? "crowd_u64" : "crowd_packed");
  std::filesystem::create_directories(dir);
  Rows r;
  std::mt19937_64 rng(3);
  std::vector<uint64_t> h = {0, 1, kKeyHashMask - 1, kKeyHashMask};
  for (int i = 0; i < 3000; ++i) h.push_back((uint64_t{5} << 50) | (rng() & 0xffff));
  for (int i = 0; i < 200; ++i) h.push_back(rng() & kKeyHashMask);
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  for (uint64_t x : h) r.keys.push_back(MakeKey(7, x));
  r.values.resize(r.keys.size() * 2);
  for (size_t i = 0; i < r.values.size(); ++i) r.values[i] = static_cast<float>(i);
  TableEntry e;
  auto t = WriteAndOpen(dir + "/t.emb", r, 7, 2, TableDtype::kFloat32, &e, GetParam());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  for (size_t i = 0; i < r.keys.size(); ++i) {
    ASSERT_EQ(t->Find(r.keys[i]), static_cast<int64_t>(i)) << i;
    ASSERT_EQ(t->KeyAt(i), r.keys[i]) << i;
  }
  for (int i = 0; i < 20000; ++i) {
    const Key k = MakeKey(7, (uint64_t{5} << 50) | (rng() & 0x1ffff));
    const auto it = std::lower_bound(r.keys.begin(), r.keys.end(), k);
    const int64_t want = it != r.keys.end() && *it == k ? it - r.keys.begin() : -1;
    ASSERT_EQ(t->Find(k), want) << k;
  }
}

INSTANTIATE_TEST_SUITE_P(BothEncodings, TableFileKeys,
                         ::testing::Values(KeyEncoding::kU64, KeyEncoding::kPacked),
                         [](const ::testing::TestParamInfo<KeyEncoding>& i) {
                           return std::string(i.param == KeyEncoding::kU64 ? "U64" : "Packed");
                         });

// Packed sizes in closed form: per key 56 - b low bits, plus n + 2^b bits of
// bucket sizes, in whole words, plus one zero word.
TEST(TableFileTest, PackedKeySectionSizes) {
  EXPECT_EQ(PackedKeyBucketBits(0), 1);
  EXPECT_EQ(PackedKeyBucketBits(2), 1);
  EXPECT_EQ(PackedKeyBucketBits(3), 2);
  EXPECT_EQ(PackedKeyBucketBits(1u << 20), 20);
  EXPECT_EQ(PackedKeyBucketBits((1u << 20) + 1), 21);
  EXPECT_EQ(PackedKeyBucketBits(uint64_t{1} << 30), 24);
  auto words = [](uint64_t bits) { return (bits + 63) / 64; };
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{5000}, uint64_t{1} << 20, uint64_t{186000}}) {
    const int b = PackedKeyBucketBits(n);
    EXPECT_EQ(KeySectionBytes(KeyEncoding::kPacked, n),
              8 * (words(n + (uint64_t{1} << b)) + words(n * (56 - b)) + 1))
        << n;
    EXPECT_EQ(KeySectionBytes(KeyEncoding::kU64, n), 8 * n);
  }
  // A 186k-key table (Criteo-shape data's largest): about 5.05 bytes a key.
  EXPECT_LT(KeySectionBytes(KeyEncoding::kPacked, 186000), 186000 * 5.1);
  EXPECT_GT(KeySectionBytes(KeyEncoding::kPacked, 186000), 186000 * 4.9);
}

// Packed key sections damaged with the checksum fixed up, so the structural
// checks are what refuse them, naming the file.
TEST(TableFileTest, DamagedPackedKeysAreRefused) {
  const std::string dir = TmpDir("packed_damage");
  std::filesystem::create_directories(dir);
  Rows r = RandomRows(2, 300, 3, 11);
  TableEntry e;
  ASSERT_TRUE(WriteAndOpen(dir + "/t.emb", r, 2, 3, TableDtype::kFloat32, &e, KeyEncoding::kPacked)
                  .ok());
  std::string good;
  {
    std::ifstream in(dir + "/t.emb", std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t n = r.keys.size();
  const int b = PackedKeyBucketBits(n);
  const size_t unary_bytes = 8 * ((n + (size_t{1} << b) + 63) / 64);
  const size_t low_at = 64 + unary_bytes;
  const size_t key_end = 64 + KeySectionBytes(KeyEncoding::kPacked, n);
  auto refused = [&](const std::string& name, const std::function<void(std::string*)>& edit,
                     const std::string& expect) {
    std::string bad = good;
    edit(&bad);
    const uint32_t crc = static_cast<uint32_t>(crc32(
        0, reinterpret_cast<const Bytef*>(bad.data() + 64), static_cast<uInt>(bad.size() - 64)));
    std::memcpy(&bad[32], &crc, 4);
    TableEntry be = e;
    be.crc32 = crc;
    const std::string path = dir + "/" + name + ".emb";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    auto t = MappedTable::Open(path, be);
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_EQ(t.status().code(), Status::Code::kCorruption) << name;
    EXPECT_NE(t.status().message().find(name + ".emb"), std::string::npos) << t.status().ToString();
    EXPECT_NE(t.status().message().find(expect), std::string::npos) << name << ": "
                                                                    << t.status().ToString();
  };
  // A bucket-size bit flipped moves a key between buckets and breaks the count.
  refused("unary", [&](std::string* s) { (*s)[64 + 1] ^= 0x10; }, "bucket sizes hold");
  refused("unary_tail", [&](std::string* s) { (*s)[low_at - 1] ^= 0x80; }, "past the bucket sizes");
  refused("low_padding", [&](std::string* s) { (*s)[key_end - 1] ^= 0x01; }, "non-zero padding");
  // Two keys of one bucket swapped out of order (the first pair sharing a bucket).
  size_t first = n;
  for (size_t i = 1; i < n && first == n; ++i)
    if (KeyHash(r.keys[i]) >> (56 - b) == KeyHash(r.keys[i - 1]) >> (56 - b)) first = i - 1;
  ASSERT_LT(first, n);
  refused("order", [&](std::string* s) {
    // Overwrite key first+1's low bits with key first's: equal, not ascending.
    const int L = 56 - b;
    const uint64_t mask = (uint64_t{1} << L) - 1, lo = KeyHash(r.keys[first]) & mask;
    for (int k = 0; k < L; ++k) {
      const size_t bit = (first + 1) * L + k;
      char& byte = (*s)[low_at + bit / 8];
      byte = static_cast<char>((byte & ~(1 << (bit % 8))) | ((lo >> k & 1) << (bit % 8)));
    }
  }, "not strictly ascending within bucket");
  refused("bucket_bits", [&](std::string* s) { (*s)[48] ^= 0x01; }, "bit buckets, expected");
  TableEntry u64_says = e;
  u64_says.key_encoding = KeyEncoding::kU64;
  auto t = MappedTable::Open(dir + "/t.emb", u64_says);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("format version 3, expected 1"), std::string::npos)
      << t.status().ToString();
}

TEST(TableFileTest, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);                          // overflow -> inf
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);         // underflow
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  // Every half survives half -> float -> half.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(TableFileTest, QuantisedTablesStayWithinTheirErrorBounds) {
  const std::string dir = TmpDir("quant");
  std::filesystem::create_directories(dir);
  const int w = 17;
  Rows r = RandomRows(1, 3000, w, 5);
  TableEntry e32, e16, e8;
  auto t32 = WriteAndOpen(dir + "/f32.emb", r, 1, w, TableDtype::kFloat32, &e32);
  auto t16 = WriteAndOpen(dir + "/f16.emb", r, 1, w, TableDtype::kFloat16, &e16);
  auto t8 = WriteAndOpen(dir + "/i8.emb", r, 1, w, TableDtype::kInt8, &e8);
  ASSERT_TRUE(t32.ok() && t16.ok() && t8.ok());
  // Sizes: keys + 4, 2, 1 (+4 per row of scale) bytes per value.
  const size_t n = r.keys.size();
  EXPECT_EQ(e32.file_bytes, 64 + n * 8 + n * w * 4);
  EXPECT_EQ(e16.file_bytes, 64 + n * 8 + n * w * 2);
  EXPECT_EQ(e8.file_bytes, 64 + n * 8 + n * 4 + n * w);
  std::vector<float> a(w), b(w);
  double max16 = 0, max8 = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* x = &r.values[i * w];
    ASSERT_TRUE(t16->Lookup(r.keys[i], a.data()));
    ASSERT_TRUE(t8->Lookup(r.keys[i], b.data()));
    float amax = 0;
    for (int k = 0; k < w; ++k) amax = std::max(amax, std::fabs(x[k]));
    for (int k = 0; k < w; ++k) {
      // fp16: relative error <= 2^-11 for normals, absolute 2^-25 below.
      ASSERT_LE(std::fabs(a[k] - x[k]), std::max(std::fabs(x[k]) * 0x1p-11f, 0x1p-25f)) << x[k];
      // int8: symmetric per-row scale amax / 127, error <= half a step.
      ASSERT_LE(std::fabs(b[k] - x[k]), amax / 127.0f * 0.5f * (1 + 1e-5f) + 1e-9f) << x[k];
      max16 = std::max(max16, double(std::fabs(a[k] - x[k])));
      max8 = std::max(max8, double(std::fabs(b[k] - x[k])));
    }
  }
  EXPECT_GT(max16, 0.0);
  EXPECT_GT(max8, max16);
}

TEST(TableFileTest, WriterRejectsUnsortedOrForeignKeys) {
  const std::string dir = TmpDir("writer");
  std::filesystem::create_directories(dir);
  TableEntry e;
  std::vector<float> v(4, 0.0f);
  Key unsorted[2] = {MakeKey(0, 5), MakeKey(0, 3)};
  Status s = WriteTableFile(dir + "/t.emb", 0, 2, TableDtype::kFloat32, unsorted, 2, v.data(), &e);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  Key dup[2] = {MakeKey(0, 5), MakeKey(0, 5)};
  EXPECT_FALSE(
      WriteTableFile(dir + "/t.emb", 0, 2, TableDtype::kFloat32, dup, 2, v.data(), &e).ok());
  Key foreign[2] = {MakeKey(0, 1), MakeKey(1, 2)};
  s = WriteTableFile(dir + "/t.emb", 0, 2, TableDtype::kFloat32, foreign, 2, v.data(), &e);
  EXPECT_NE(s.message().find("belongs to table 1"), std::string::npos) << s.ToString();
}

// --- Corruption of a whole bundle --------------------------------------

class BundleCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    tm_ =
        std::make_unique<testing::TrainedModel>(testing::SmallModel(ModelType::kDeepFM, 3), 1, 64);
    o_.out_dir = TmpDir(std::string("corrupt_") +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(ExportBundle(tm_->model.get(), tm_->client.get(), testing::SpecFor(3), o_).ok());
    ASSERT_TRUE(InferenceEngine::Open(o_.out_dir).ok());
  }
  std::string Bytes(const std::string& name) {
    std::ifstream in(o_.out_dir + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Put(const std::string& name, const std::string& bytes) {
    std::ofstream(o_.out_dir + "/" + name, std::ios::binary | std::ios::trunc) << bytes;
  }
  // Opening fails with `code` and a message containing `file` and `what`.
  void ExpectOpenFails(Status::Code code, const std::string& file, const std::string& what) {
    auto e = InferenceEngine::Open(o_.out_dir);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), code) << e.status().ToString();
    EXPECT_NE(e.status().message().find(file), std::string::npos) << e.status().ToString();
    EXPECT_NE(e.status().message().find(what), std::string::npos) << e.status().ToString();
  }
  std::unique_ptr<testing::TrainedModel> tm_;
  ExportOptions o_;
};

TEST_F(BundleCorruption, BitFlipInTableValues) {
  std::string b = Bytes("table_1.emb");
  b[b.size() - 3] ^= 0x04;
  Put("table_1.emb", b);
  ExpectOpenFails(Status::Code::kCorruption, "table_1.emb", "checksum mismatch");
}

TEST_F(BundleCorruption, BitFlipInTableKeys) {
  std::string b = Bytes("table_0.emb");
  b[64 + 3] ^= 0x80;
  Put("table_0.emb", b);
  ExpectOpenFails(Status::Code::kCorruption, "table_0.emb", "checksum mismatch");
}

// Every byte of a table file is checked: a single flipped bit anywhere (the
// header, its padding, keys, values) stops the bundle from opening.
TEST_F(BundleCorruption, EverySingleBitFlipInATableIsDetected) {
  const std::string good = Bytes("table_0.emb");
  ASSERT_LT(good.size(), 20000u);
  int undetected = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= static_cast<char>(1 << (i % 8));
    Put("table_0.emb", bad);
    auto e = InferenceEngine::Open(o_.out_dir);
    if (e.ok())
      ++undetected;
    else
      EXPECT_EQ(e.status().code(), Status::Code::kCorruption) << i << ": " << e.status().ToString();
  }
  EXPECT_EQ(undetected, 0) << "of " << good.size() << " bytes";
  Put("table_0.emb", good);
  EXPECT_TRUE(InferenceEngine::Open(o_.out_dir).ok());
}

TEST_F(BundleCorruption, BitFlipInDenseWeights) {
  auto m = ReadBundleManifest(o_.out_dir);
  ASSERT_TRUE(m.ok());
  const DenseTensor* big = &m->dense[0];
  for (const DenseTensor& t : m->dense)
    if (t.values.size() > big->values.size()) big = &t;
  const std::string values(reinterpret_cast<const char*>(big->values.data()),
                           big->values.size() * sizeof(float));
  std::string file = Bytes("model.pb");
  const size_t at = file.find(values);
  ASSERT_NE(at, std::string::npos);
  file[at + values.size() / 2] ^= 0x01;
  Put("model.pb", file);
  ExpectOpenFails(Status::Code::kCorruption, "model.pb", "'" + big->name + "': checksum mismatch");
}

TEST_F(BundleCorruption, TruncatedTable) {
  std::string b = Bytes("table_2.emb");
  Put("table_2.emb", b.substr(0, b.size() - 10));
  ExpectOpenFails(Status::Code::kCorruption, "table_2.emb", "truncated");
  Put("table_2.emb", b.substr(0, 20));
  ExpectOpenFails(Status::Code::kCorruption, "table_2.emb", "truncated");
  Put("table_2.emb", "");
  ExpectOpenFails(Status::Code::kCorruption, "table_2.emb", "truncated");
}

TEST_F(BundleCorruption, HeaderDamage) {
  std::string b = Bytes("table_1.emb");
  std::string bad = b;
  bad[0] = 'X';
  Put("table_1.emb", bad);
  ExpectOpenFails(Status::Code::kCorruption, "table_1.emb", "bad magic");
  bad = b;
  bad[16] ^= 1;  // width
  Put("table_1.emb", bad);
  ExpectOpenFails(Status::Code::kCorruption, "table_1.emb", "model.pb expects");
  bad = b;
  bad[33] ^= 1;  // stored crc
  Put("table_1.emb", bad);
  ExpectOpenFails(Status::Code::kCorruption, "table_1.emb", "checksum");
}

TEST_F(BundleCorruption, TableFilesSwapped) {
  const std::string t0 = Bytes("table_0.emb"), t1 = Bytes("table_1.emb");
  Put("table_0.emb", t1);
  Put("table_1.emb", t0);
  ExpectOpenFails(Status::Code::kCorruption, "table_0.emb", "expects table 0");
}

TEST_F(BundleCorruption, MissingTableFile) {
  std::filesystem::remove(o_.out_dir + "/table_2.emb");
  ExpectOpenFails(Status::Code::kNotFound, "table_2.emb", "cannot open");
}

TEST_F(BundleCorruption, DamagedModelFile) {
  const std::string m = Bytes("model.pb");
  Put("model.pb", m.substr(0, m.size() / 2));
  ExpectOpenFails(Status::Code::kCorruption, "model.pb", "");
  Put("model.pb", "this is not a protobuf message at all \xff\xff\xff\xff");
  ExpectOpenFails(Status::Code::kCorruption, "model.pb", "");
  std::filesystem::remove(o_.out_dir + "/model.pb");
  ExpectOpenFails(Status::Code::kNotFound, "model.pb", "not a ctrps bundle");
}

TEST_F(BundleCorruption, DenseTensorWithWrongSize) {
  auto m = ReadBundleManifest(o_.out_dir);
  ASSERT_TRUE(m.ok());
  m->dense[1].rows += 1;  // the stored values no longer fill rows x cols
  ASSERT_TRUE(WriteBundleManifest(o_.out_dir, *m).ok());
  ExpectOpenFails(Status::Code::kCorruption, "model.pb", m->dense[1].name);
}

}  // namespace
}  // namespace ctrps::worker::serve
