#include "common/flat_key_map.h"

#include <unordered_map>

#include <gtest/gtest.h>

namespace ctrps {
namespace {

TEST(FlatKeyMapTest, MatchesUnorderedMap) {
  FlatKeyMap m(4);
  std::unordered_map<Key, uint32_t> ref;
  uint64_t x = 1;
  for (int i = 0; i < 100000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    Key k = x >> (i % 3 == 0 ? 50 : 8);  // many repeats among the small keys
    bool inserted;
    uint32_t idx = m.FindOrInsert(k, &inserted);
    auto it = ref.find(k);
    if (it == ref.end()) {
      EXPECT_TRUE(inserted);
      EXPECT_EQ(idx, ref.size());
      ref[k] = idx;
    } else {
      EXPECT_FALSE(inserted);
      EXPECT_EQ(idx, it->second);
    }
  }
  EXPECT_EQ(m.size(), ref.size());
  for (auto& [k, v] : ref) EXPECT_EQ(m.Find(k), v);
  EXPECT_EQ(m.Find(0xdeadbeefdeadbeefULL), FlatKeyMap::kEmpty);
  size_t n = 0;
  m.ForEach([&](Key, uint32_t) { ++n; });
  EXPECT_EQ(n, ref.size());
}

}  // namespace
}  // namespace ctrps
