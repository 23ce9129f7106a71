#include "worker/data/criteo_parser.h"

#include <cmath>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "tests/worker/data/parser_test_util.h"
#include "tests/worker/data/test_util.h"
#include "worker/data/text_util.h"

namespace ctrps::worker {
namespace {

using testing::CriteoLine;
using testing::Parsed;
using testing::ParseLine;

// Key of integer field `field` (0-based) holding `value`, via a full line.
Key IntFieldKey(CriteoParser& parser, int field, const std::string& value) {
  std::vector<std::string> ints(13, "1");
  ints[field] = value;
  Parsed p = ParseLine(parser, CriteoLine("0", ints));
  EXPECT_TRUE(p.ok) << p.error.detail;
  return p.keys[field];
}

TEST(CriteoParserTest, SchemaHas39FieldsInColumnOrder) {
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  ASSERT_EQ(parser.schema().num_fields(), 39);
  EXPECT_EQ(parser.schema().field_names[0], "I1");
  EXPECT_EQ(parser.schema().field_names[12], "I13");
  EXPECT_EQ(parser.schema().field_names[13], "C1");
  EXPECT_EQ(parser.schema().field_names[38], "C26");
}

TEST(CriteoParserTest, ParsesAValidLineWithTableIdsInTheTopBits) {
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  Parsed p = ParseLine(parser, CriteoLine("1", {"5", "-1", "", "0"}, {"3a171ecb", "", "05db9164"}));
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.label, 1.0f);
  for (int f = 0; f < 39; ++f) {
    EXPECT_EQ(KeyTable(p.keys[f]), f);
    EXPECT_EQ(p.keys[f] >> 56, static_cast<uint64_t>(f));
    EXPECT_EQ(p.values[f], 1.0f);
  }
  EXPECT_EQ(p.keys[2], FeatureHasher::MissingKey(2));    // empty I3
  EXPECT_EQ(p.keys[14], FeatureHasher::MissingKey(14));  // empty C2
  EXPECT_NE(p.keys[13], FeatureHasher::MissingKey(13));
  EXPECT_EQ(ParseLine(parser, CriteoLine("0")).label, 0.0f);
}

TEST(CriteoParserTest, MissingKeyIsDistinctFromEveryValue) {
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  std::set<Key> keys;
  for (int v = -50; v < 5000; ++v) keys.insert(IntFieldKey(parser, 0, std::to_string(v)));
  EXPECT_EQ(keys.count(FeatureHasher::MissingKey(0)), 0u);
  EXPECT_EQ(KeyHash(FeatureHasher::MissingKey(7)), 0u);
}

TEST(CriteoParserTest, LogBucketKeepsSmallValuesAndBucketsLargeOnes) {
  EXPECT_EQ(CriteoParser::LogBucket(3), 1);
  EXPECT_EQ(CriteoParser::LogBucket(5), 2);
  EXPECT_EQ(CriteoParser::LogBucket(100), 21);
  EXPECT_EQ(CriteoParser::LogBucket(4095), 69);  // from the table
  EXPECT_EQ(CriteoParser::LogBucket(4096), 69);  // computed
  EXPECT_EQ(CriteoParser::LogBucket(1000000000), 429);
  EXPECT_EQ(CriteoParser::LogBucket(INT64_MAX), 1906);
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  EXPECT_EQ(IntFieldKey(parser, 4, "3"), IntFieldKey(parser, 4, "4"));      // both bucket 1
  EXPECT_NE(IntFieldKey(parser, 4, "3"), IntFieldKey(parser, 4, "1"));      // bucket 1 != value 1
  EXPECT_NE(IntFieldKey(parser, 4, "5"), IntFieldKey(parser, 4, "2"));      // bucket 2 != value 2
  EXPECT_NE(IntFieldKey(parser, 4, "-1"), IntFieldKey(parser, 4, "1"));
  EXPECT_NE(IntFieldKey(parser, 4, "0"), IntFieldKey(parser, 4, ""));
  EXPECT_EQ(IntFieldKey(parser, 4, "+7"), IntFieldKey(parser, 4, "7"));
  EXPECT_NE(IntFieldKey(parser, 4, "7"), IntFieldKey(parser, 5, "7"));      // per field
}

TEST(CriteoParserTest, ScaleModeUsesOneKeyPerFieldAndAMonotoneValue) {
  CriteoParser parser(0, IntegerEncoding::kScale);
  std::vector<std::string> ints = {"0", "-3", "1000", ""};
  Parsed p = ParseLine(parser, CriteoLine("1", ints));
  ASSERT_TRUE(p.ok);
  EXPECT_NE(p.keys[0], FeatureHasher::MissingKey(0));
  EXPECT_FLOAT_EQ(p.values[0], 0.0f);
  EXPECT_FLOAT_EQ(p.values[1], -std::log1p(3.0f));
  EXPECT_FLOAT_EQ(p.values[2], std::log1p(1000.0f));
  EXPECT_EQ(p.keys[3], FeatureHasher::MissingKey(3));
  EXPECT_EQ(p.values[3], 1.0f);
  EXPECT_EQ(p.values[13], 1.0f);  // categoricals unaffected
  Parsed q = ParseLine(parser, CriteoLine("1", {"42", "7", "9"}));
  EXPECT_EQ(p.keys[0], q.keys[0]);
  EXPECT_EQ(p.keys[1], q.keys[1]);
  EXPECT_NE(p.keys[0], q.keys[1]);
  float last = -1e9f;
  for (int64_t x = -100000; x <= 100000; x += 997) {
    float v = CriteoParser::ScaledValue(x);
    EXPECT_GT(v, last);
    last = v;
  }
}

TEST(CriteoParserTest, CategoricalsAreCaseInsensitiveAnyLengthAndSeeded) {
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  CriteoParser reseeded(12345, IntegerEncoding::kLogBucket);
  auto key = [](CriteoParser& p, const std::string& token, int column = 0) {
    std::vector<std::string> cats(26, "x");
    cats[column] = token;
    Parsed parsed = ParseLine(p, CriteoLine("1", {}, cats));
    EXPECT_TRUE(parsed.ok) << parsed.error.detail;
    return parsed.keys[13 + column];
  };
  EXPECT_EQ(key(parser, "68FD1E64"), key(parser, "68fd1e64"));
  EXPECT_NE(key(parser, "68fd1e64"), key(parser, "68fd1e65"));
  EXPECT_NE(key(parser, "68fd1e64"), key(reseeded, "68fd1e64"));
  EXPECT_NE(key(parser, "abc", 0) & kKeyHashMask, key(parser, "abc", 1) & kKeyHashMask);
  std::string long_token(300, 'Q');
  EXPECT_EQ(key(parser, long_token), key(parser, std::string(300, 'q')));
  EXPECT_NE(key(parser, "caf\xc3\xa9"), key(parser, "cafe"));
}

// The word-at-a-time CategoricalKey agrees with a byte-by-byte reference.
TEST(CategoricalKeyTest, MatchesByteReference) {
  FeatureHasher hasher(3, 9);
  std::mt19937 rng(3);
  const char alphabet[] = "aZ09@[`{\x7f\x1f\x80\xff" "AzMm";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string token(rng() % 90, ' ');
    for (char& c : token) c = rng() % 4 ? alphabet[rng() % (sizeof(alphabet) - 1)] : static_cast<char>(rng());
    std::string lower = token;
    size_t first_bad = std::string::npos;
    for (size_t i = 0; i < token.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(token[i]);
      if ((c < 0x20 || c == 0x7f) && first_bad == std::string::npos) first_bad = i;
      if (c >= 'A' && c <= 'Z') lower[i] = static_cast<char>(c + 32);
    }
    Key key = 0;
    size_t bad = 12345;
    bool ok = CategoricalKey(hasher, 2, token, &key, &bad);
    ASSERT_EQ(ok, first_bad == std::string::npos) << QuoteForMessage(token, 100);
    if (ok) {
      ASSERT_EQ(key, hasher.TokenKey(2, lower)) << QuoteForMessage(token, 100);
    } else {
      ASSERT_EQ(bad, first_bad);
    }
  }
}

struct BadCase {
  std::string line;
  MalformedReason reason;
  int column;
  std::string detail_part;
};

TEST(CriteoParserTest, RejectsMalformedLinesWithReasonAndColumn) {
  CriteoParser parser(0, IntegerEncoding::kLogBucket);
  std::string ok = CriteoLine();
  std::vector<BadCase> cases = {
      {ok.substr(0, ok.rfind('\t')), MalformedReason::kWrongColumnCount, -1, "got 39"},
      {ok + "\textra", MalformedReason::kWrongColumnCount, -1, "got 41"},
      {ok + "\t", MalformedReason::kWrongColumnCount, -1, "got 41"},
      {"1", MalformedReason::kWrongColumnCount, -1, "got 1"},
      {CriteoLine("2"), MalformedReason::kBadLabel, 0, "expected 0 or 1, got '2'"},
      {CriteoLine(""), MalformedReason::kBadLabel, 0, "got ''"},
      {CriteoLine("1.0"), MalformedReason::kBadLabel, 0, "'1.0'"},
      {CriteoLine("1", {"1", "abc"}), MalformedReason::kBadInteger, 2, "got 'abc'"},
      {CriteoLine("1", {"1.5"}), MalformedReason::kBadInteger, 1, "'1.5'"},
      {CriteoLine("1", {"99999999999999999999"}), MalformedReason::kBadInteger, 1, "out of the 64-bit range"},
      {CriteoLine("1", {"-9223372036854775809"}), MalformedReason::kBadInteger, 1, "out of the 64-bit range"},
      {CriteoLine("1", {" 3"}), MalformedReason::kBadInteger, 1, "' 3'"},
      {CriteoLine("1", {}, {"ab\x01" "cd"}), MalformedReason::kControlCharacter, 14, "offset 2"},
      {CriteoLine("1", {}, {"x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
                            "x", "x", "x", "x", "x", "x", "x", "x", "x", "a\x7f"}),
       MalformedReason::kControlCharacter, 39, "control"},
  };
  for (const BadCase& c : cases) {
    Parsed p = ParseLine(parser, c.line);
    EXPECT_FALSE(p.ok) << c.detail_part;
    EXPECT_EQ(p.error.reason, c.reason) << c.detail_part << ": " << p.error.detail;
    EXPECT_EQ(p.error.column, c.column) << c.detail_part;
    EXPECT_NE(p.error.detail.find(c.detail_part), std::string::npos) << p.error.detail;
  }
  EXPECT_EQ(parser.ColumnName(0), "label");
  EXPECT_EQ(parser.ColumnName(3), "I3");
  EXPECT_EQ(parser.ColumnName(39), "C26");
}

}  // namespace
}  // namespace ctrps::worker
