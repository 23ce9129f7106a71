// The inline rows of sparse-row tables (table_file.h, PrefetchInlineRows /
// ReadInline), what the engine's lookups read: every row of crowded and
// empty buckets reads exactly as ReadRow, padded and not, at every width the
// format takes, both key encodings and both value types, nothing written
// past the row; absent keys and other tables' keys are not found.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <vector>

#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/table_file.h"

namespace ctrps::worker::serve {
namespace {

namespace fs = std::filesystem;
using testing::TmpDir;

struct Case {
  KeyEncoding encoding;
  TableDtype dtype;
};

class SparseBucketLookup : public ::testing::TestWithParam<Case> {};

// n keys of table 3; with crowd, every other key shares its hash's top bits
// with the one before (so buckets hold several rows and many stay empty).
std::vector<Key> Keys(int n, bool crowd, std::mt19937_64* rng) {
  std::vector<Key> keys;
  for (int i = 0; i < n; ++i) {
    uint64_t h = (*rng)() & kKeyHashMask;
    if (crowd && i % 2 == 1) h = (KeyHash(keys.back()) & ~uint64_t{0xffff}) | (h & 0xffff);
    keys.push_back(MakeKey(3, h));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

TEST_P(SparseBucketLookup, InlineRowsReadAsReadRowDoes) {
  const Case c = GetParam();
  // Its own directory: ctest runs the four cases at once.
  const std::string dir = TmpDir(std::string("sparse_bucket_lookup_") +
                                 (c.encoding == KeyEncoding::kPacked ? "packed_" : "u64_") +
                                 TableDtypeName(c.dtype));
  fs::create_directories(dir);
  std::mt19937_64 rng(12);
  for (bool crowd : {false, true})
    for (int width : {1, 7, 8, 9, 11, 16, 17, 33, 64}) {
      const std::vector<Key> keys = Keys(1500, crowd, &rng);
      const size_t n = keys.size();
      std::vector<float> rows(n * width);
      for (size_t i = 0; i < n; ++i)
        for (int k = 0; k < width; ++k)  // every 7th row empty, the rest about 2/3 full
          rows[i * width + k] = i % 7 == 0 || (i + k) % 3 == 0
                                    ? 0.0f
                                    : std::normal_distribution<float>(0, 1)(rng);
      TableEntry e;
      const std::string path = dir + "/t.emb";
      ASSERT_TRUE(WriteSparseTableFile(path, 3, width, c.dtype, keys.data(), n, rows.data(),
                                       /*drop_empty=*/false, &e, c.encoding)
                      .ok());
      auto t = MappedTable::Open(path, e);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ASSERT_TRUE(t->inline_rows());
      const int P = t->PaddedWidth();
      std::vector<float> want(P), got(P + 8);
      int shared = 0;
      for (size_t i = 0; i < n; ++i) {
        uint64_t lo = 0, hi = 0;
        t->PrefetchInlineBucket(keys[i]);
        t->PrefetchInlineRows(keys[i], &lo, &hi);
        ASSERT_LT(lo, hi) << "row " << i << " width " << width;
        shared += hi - lo > static_cast<uint64_t>(8 + 8 + 4 * width);  // more than one row
        t->ReadRow(i, want.data());
        for (bool padded : {false, true}) {
          std::fill(got.begin(), got.end(), -7.0f);
          ASSERT_TRUE(t->ReadInline(keys[i], lo, hi, got.data(), padded)) << "row " << i;
          for (int k = 0; k < width; ++k)
            ASSERT_EQ(got[k], want[k]) << "width " << width << " row " << i << " entry " << k;
          for (int k = width; k < P; ++k)
            ASSERT_EQ(got[k], padded ? 0.0f : -7.0f) << "width " << width << " entry " << k;
          for (int k = P; k < P + 8; ++k) ASSERT_EQ(got[k], -7.0f) << "written past the row";
        }
        ASSERT_EQ(t->KeyAt(i), keys[i]);
      }
      if (crowd) {
        EXPECT_GT(shared, static_cast<int>(n / 4)) << "the crowded keys share buckets";
      }
      // Keys that are not in the table: nothing found, nothing written.
      for (int j = 0; j < 500; ++j) {
        const Key absent = MakeKey(3, rng() & kKeyHashMask);
        if (std::binary_search(keys.begin(), keys.end(), absent)) continue;
        uint64_t lo = 0, hi = 0;
        t->PrefetchInlineRows(absent, &lo, &hi);
        std::fill(got.begin(), got.end(), -7.0f);
        EXPECT_FALSE(t->ReadInline(absent, lo, hi, got.data(), true));
        EXPECT_EQ(got[0], -7.0f);
      }
      const Key foreign = MakeKey(4, KeyHash(keys[0]));  // another table's key
      uint64_t lo = 0, hi = 0;
      t->PrefetchInlineRows(foreign, &lo, &hi);
      EXPECT_FALSE(t->ReadInline(foreign, lo, hi, got.data(), true));
    }
}

INSTANTIATE_TEST_SUITE_P(
    EncodingsAndTypes, SparseBucketLookup,
    ::testing::Values(Case{KeyEncoding::kU64, TableDtype::kFloat32},
                      Case{KeyEncoding::kPacked, TableDtype::kFloat32},
                      Case{KeyEncoding::kU64, TableDtype::kFloat16},
                      Case{KeyEncoding::kPacked, TableDtype::kFloat16}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return std::string(i.param.encoding == KeyEncoding::kPacked ? "Packed" : "U64") +
             (i.param.dtype == TableDtype::kFloat16 ? "Fp16" : "Fp32");
    });

}  // namespace
}  // namespace ctrps::worker::serve
