#include "worker/data/libffm_parser.h"

#include <gtest/gtest.h>

#include "tests/worker/data/parser_test_util.h"

namespace ctrps::worker {
namespace {

using testing::Parsed;
using testing::ParseLine;

TEST(LibffmParserTest, ParsesFieldsValuesAndMissingFields) {
  LibffmParser parser(4, 0);
  FeatureHasher hasher(4, 0);
  Parsed p = ParseLine(parser, "1 0:abc:1  3:17:0.5\t2:x:-2e-1");
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.label, 1.0f);
  EXPECT_EQ(p.keys[0], hasher.TokenKey(0, "abc"));
  EXPECT_EQ(p.values[0], 1.0f);
  EXPECT_EQ(p.keys[1], FeatureHasher::MissingKey(1));
  EXPECT_EQ(p.values[1], 1.0f);
  EXPECT_EQ(p.keys[2], hasher.TokenKey(2, "x"));
  EXPECT_FLOAT_EQ(p.values[2], -0.2f);
  EXPECT_EQ(p.keys[3], hasher.TokenKey(3, "17"));
  EXPECT_FLOAT_EQ(p.values[3], 0.5f);
  for (int f = 0; f < 4; ++f) EXPECT_EQ(KeyTable(p.keys[f]), f);
  EXPECT_NE(hasher.TokenKey(0, "ABC"), hasher.TokenKey(0, "abc"));  // case-sensitive
}

TEST(LibffmParserTest, AcceptsSignedLabelsAndLabelOnlyLines) {
  LibffmParser parser(2, 0);
  EXPECT_EQ(ParseLine(parser, "-1 0:a:1").label, 0.0f);
  EXPECT_EQ(ParseLine(parser, "+1 0:a:1").label, 1.0f);
  EXPECT_EQ(ParseLine(parser, "0 0:a:1").label, 0.0f);
  Parsed only = ParseLine(parser, "1");
  ASSERT_TRUE(only.ok);
  EXPECT_EQ(only.keys[0], FeatureHasher::MissingKey(0));
  EXPECT_EQ(only.keys[1], FeatureHasher::MissingKey(1));
  // Reusing the parser does not leak "seen" fields from the line before.
  EXPECT_TRUE(ParseLine(parser, "1 1:a:1").ok);
  EXPECT_TRUE(ParseLine(parser, "1 1:a:1").ok);
}

TEST(LibffmParserTest, RejectsMalformedLines) {
  LibffmParser parser(3, 0);
  struct Case {
    const char* line;
    MalformedReason reason;
    int column;
    const char* detail_part;
  } cases[] = {
      {"2 0:a:1", MalformedReason::kBadLabel, 0, "'2'"},
      {"yes 0:a:1", MalformedReason::kBadLabel, 0, "'yes'"},
      {"   ", MalformedReason::kBadLabel, 0, "whitespace"},
      {"1 3:a:1", MalformedReason::kFieldOutOfRange, 1, "not in [0, 3)"},
      {"1 0:a:1 99999999999999999999:a:1", MalformedReason::kBadToken, 2, "field index"},
      {"1 -1:a:1", MalformedReason::kBadToken, 1, "field index"},
      {"1 x:a:1", MalformedReason::kBadToken, 1, "field index"},
      {"1 0:a", MalformedReason::kBadToken, 1, "field:feature:value"},
      {"1 0:a:1:2", MalformedReason::kBadToken, 1, "field:feature:value"},
      {"1 0", MalformedReason::kBadToken, 1, "field:feature:value"},
      {"1 0::1", MalformedReason::kBadToken, 1, "empty feature"},
      {"1 0:a:", MalformedReason::kBadNumber, 1, "finite number"},
      {"1 0:a:nan", MalformedReason::kBadNumber, 1, "finite number"},
      {"1 0:a:inf", MalformedReason::kBadNumber, 1, "finite number"},
      {"1 0:a:-2e91", MalformedReason::kBadNumber, 1, "float range"},
      {"1 0:a:1x", MalformedReason::kBadNumber, 1, "'0:a:1x'"},
      {"1 0:a:1 2:b:1 0:c:1", MalformedReason::kDuplicateField, 3, "field 0 appears more than once"},
      {"1 0:a\x01:1", MalformedReason::kControlCharacter, 1, "control"},
  };
  for (const Case& c : cases) {
    Parsed p = ParseLine(parser, c.line);
    EXPECT_FALSE(p.ok) << c.line;
    EXPECT_EQ(p.error.reason, c.reason) << c.line << ": " << p.error.detail;
    EXPECT_EQ(p.error.column, c.column) << c.line;
    EXPECT_NE(p.error.detail.find(c.detail_part), std::string::npos) << p.error.detail;
  }
  EXPECT_EQ(parser.ColumnName(2), "token 2");
}

TEST(ParserFactoryTest, OptionsAreValidated) {
  ParserOptions options;
  options.format = DataFormat::kLibffm;
  EXPECT_EQ(NewLineParser(options).status().code(), Status::Code::kInvalidArgument);
  options.libffm_num_fields = 257;
  EXPECT_NE(options.Validate().message().find("libffm_num_fields"), std::string::npos);
  options.libffm_num_fields = 10;
  auto parser = NewLineParser(options);
  ASSERT_TRUE(parser.ok());
  EXPECT_EQ((*parser)->num_fields(), 10);
  EXPECT_EQ(*ParseDataFormat("avazu"), DataFormat::kAvazu);
  EXPECT_FALSE(ParseDataFormat("csv").ok());
}

}  // namespace
}  // namespace ctrps::worker
