// The two-stage lookups of sparse-row tables (table_file.h,
// PrefetchBucketRows): the bucket index carries each bucket's first value
// index, and a lookup through it reads exactly the row that ReadRow reads,
// for every key of crowded and empty buckets, both key encodings and both
// value types; absent keys are not found; KeyAt still walks the index.
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

TEST_P(SparseBucketLookup, FindsEveryRowAsReadRowDoes) {
  const Case c = GetParam();
  // Its own directory: ctest runs the four cases at once.
  const std::string dir = TmpDir(std::string("sparse_bucket_lookup_") +
                                 (c.encoding == KeyEncoding::kPacked ? "packed_" : "u64_") +
                                 TableDtypeName(c.dtype));
  fs::create_directories(dir);
  std::mt19937_64 rng(12);
  for (bool crowd : {false, true})
    for (int width : {1, 7, 11, 16, 33}) {
      const std::vector<Key> keys = Keys(2000, crowd, &rng);
      const size_t n = keys.size();
      std::vector<float> rows(n * width);
      for (size_t i = 0; i < n; ++i)
        for (int k = 0; k < width; ++k)
          rows[i * width + k] = (i + k) % 3 == 0 ? 0.0f : std::normal_distribution<float>(0, 1)(rng);
      TableEntry e;
      const std::string path = dir + "/t.emb";
      ASSERT_TRUE(WriteSparseTableFile(path, 3, width, c.dtype, keys.data(), n, rows.data(),
                                       /*drop_empty=*/false, &e, c.encoding)
                      .ok());
      auto t = MappedTable::Open(path, e);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ASSERT_TRUE(t->bucket_values());
      std::vector<float> want(t->PaddedWidth()), got(t->PaddedWidth());
      int shared = 0;
      for (size_t i = 0; i < n; ++i) {
        SparseBucketRows b;
        t->PrefetchBucket(keys[i]);
        t->PrefetchBucketRows(keys[i], &b);
        ASSERT_LE(b.lo, i);
        ASSERT_LT(i, b.hi);
        shared += b.hi - b.lo > 1;
        const int64_t found = t->FindInBucket(keys[i], b);
        ASSERT_EQ(found, t->Find(keys[i])) << "key " << i << " width " << width;
        ASSERT_EQ(found, static_cast<int64_t>(i));
        const uint64_t v = t->ValueIndexInBucket(i, b);
        ASSERT_EQ(v, t->SparseValueIndex(i)) << "row " << i;
        t->ReadRow(i, want.data());
        t->ReadSparseRowPaddedAt(i, v, got.data());
        for (int k = 0; k < width; ++k) ASSERT_EQ(got[k], want[k]) << "row " << i << " entry " << k;
        ASSERT_EQ(t->KeyAt(i), keys[i]);
      }
      if (crowd) {
        EXPECT_GT(shared, static_cast<int>(n / 2)) << "the crowded keys share buckets";
      }
      // Keys that are not in the table: their buckets' rows, none found.
      for (int j = 0; j < 500; ++j) {
        const Key absent = MakeKey(3, rng() & kKeyHashMask);
        if (std::binary_search(keys.begin(), keys.end(), absent)) continue;
        SparseBucketRows b;
        t->PrefetchBucketRows(absent, &b);
        EXPECT_EQ(t->FindInBucket(absent, b), -1);
      }
      SparseBucketRows b;
      t->PrefetchBucketRows(MakeKey(4, KeyHash(keys[0])), &b);  // another table's key
      EXPECT_EQ(t->FindInBucket(MakeKey(4, KeyHash(keys[0])), b), -1);
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
