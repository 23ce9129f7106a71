#include "worker/data/text_util.h"

#include <gtest/gtest.h>

namespace ctrps::worker {
namespace {

TEST(CheckLineBytesTest, AcceptsAsciiAndWellFormedUtf8) {
  MalformedReason reason;
  size_t offset;
  EXPECT_TRUE(CheckLineBytes("", &reason, &offset));
  EXPECT_TRUE(CheckLineBytes("plain ascii line that is longer than eight bytes\t1\t2", &reason, &offset));
  EXPECT_TRUE(CheckLineBytes("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", &reason, &offset));  // é € 😀
}

TEST(CheckLineBytesTest, FindsNulAtAnyPosition) {
  for (size_t pos = 0; pos < 20; ++pos) {
    std::string line(20, 'a');
    line[pos] = '\0';
    MalformedReason reason;
    size_t offset = 99;
    ASSERT_FALSE(CheckLineBytes(line, &reason, &offset)) << pos;
    EXPECT_EQ(reason, MalformedReason::kNulByte);
    EXPECT_EQ(offset, pos);
  }
}

TEST(CheckLineBytesTest, RejectsMalformedUtf8) {
  const char* bad[] = {
      "\x80",              // lone continuation byte
      "\xc3",              // truncated sequence
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong 3-byte
      "\xed\xa0\x80",      // UTF-16 surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xff",              // never valid
      "abcdefgh\xc3(",     // bad continuation after the fast path
  };
  for (const char* s : bad) {
    MalformedReason reason;
    size_t offset;
    EXPECT_FALSE(CheckLineBytes(s, &reason, &offset)) << QuoteForMessage(s);
    EXPECT_EQ(reason, MalformedReason::kInvalidUtf8) << QuoteForMessage(s);
  }
}

TEST(ParseInt64Test, AcceptsDecimalIntegersOnly) {
  int64_t v;
  EXPECT_TRUE(ParseInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(ParseInt64("-3", &v));
  EXPECT_EQ(v, -3);
  EXPECT_TRUE(ParseInt64("+17", &v));
  EXPECT_EQ(v, 17);
  EXPECT_TRUE(ParseInt64("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  for (const char* bad : {"", "-", "+", "+-1", "1.5", "1e3", " 1", "1 ", "0x10", "abc", "12a",
                          "9223372036854775808", "99999999999999999999"}) {
    EXPECT_FALSE(ParseInt64(bad, &v)) << bad;
  }
}

TEST(ParseFiniteDoubleTest, RejectsNonFiniteAndJunk) {
  double v;
  EXPECT_TRUE(ParseFiniteDouble("0.25", &v));
  EXPECT_DOUBLE_EQ(v, 0.25);
  EXPECT_TRUE(ParseFiniteDouble("-1e-3", &v));
  EXPECT_DOUBLE_EQ(v, -1e-3);
  EXPECT_TRUE(ParseFiniteDouble("+2", &v));
  EXPECT_DOUBLE_EQ(v, 2);
  for (const char* bad : {"", "inf", "nan", "-inf", "1e999", "1.0x", "--1", "+-1", "."}) {
    EXPECT_FALSE(ParseFiniteDouble(bad, &v)) << bad;
  }
}

TEST(QuoteForMessageTest, EscapesAndTruncates) {
  EXPECT_EQ(QuoteForMessage("ab"), "'ab'");
  EXPECT_EQ(QuoteForMessage(std::string("a\x01\tb", 4)), "'a\\x01\\x09b'");
  EXPECT_EQ(QuoteForMessage("abcdef", 3), "'abc'...");
}

}  // namespace
}  // namespace ctrps::worker
