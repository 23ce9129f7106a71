#include "common/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace ctrps {
namespace {

TEST(Crc32cTest, KnownValues) {
  // The CRC-32C check value (RFC 3720, iSCSI) and a few more.
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, "", 0), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(0, zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32cTest, ExtendsAcrossPiecesAtEveryAlignment) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s.push_back(static_cast<char>(i * 37 + 11));
  const uint32_t whole = Crc32c(0, s.data(), s.size());
  for (size_t cut = 0; cut <= 17; ++cut) {
    const uint32_t a = Crc32c(0, s.data(), cut);
    EXPECT_EQ(Crc32c(a, s.data() + cut, s.size() - cut), whole) << cut;
  }
  s[500] ^= 1;
  EXPECT_NE(Crc32c(0, s.data(), s.size()), whole);
}

}  // namespace
}  // namespace ctrps
