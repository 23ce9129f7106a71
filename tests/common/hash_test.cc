#include "common/hash.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/keys.h"

namespace ctrps {
namespace {

TEST(HashTest, StableValues) {
  // Hashes are persisted inside keys: these values must never change.
  EXPECT_EQ(HashString("68fd1e64"), HashString("68fd1e64"));
  EXPECT_NE(HashString("68fd1e64"), HashString("68fd1e65"));
  EXPECT_NE(HashString("abc", 1), HashString("abc", 2));
  EXPECT_NE(HashString(""), HashString(std::string(1, '\0')));
}

TEST(HashTest, FewCollisions) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 200000; ++i) seen.insert(HashString(std::to_string(i)) & kKeyHashMask);
  EXPECT_EQ(seen.size(), 200000u);
}

TEST(KeysTest, Layout) {
  Key k = MakeKey(38, ~uint64_t{0});
  EXPECT_EQ(KeyTable(k), 38);
  EXPECT_EQ(KeyHash(k), kKeyHashMask);
  EXPECT_EQ(KeyTable(MakeKey(255, 7)), 255);
  EXPECT_EQ(KeyHash(MakeKey(255, 7)), 7u);
}

}  // namespace
}  // namespace ctrps
