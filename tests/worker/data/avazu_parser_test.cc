#include "worker/data/avazu_parser.h"

#include <gtest/gtest.h>

#include "tests/worker/data/parser_test_util.h"
#include "tests/worker/data/test_util.h"

namespace ctrps::worker {
namespace {

using testing::AvazuHeader;
using testing::AvazuLine;
using testing::Parsed;
using testing::ParseLine;

TEST(AvazuParserTest, SchemaHas23Fields) {
  AvazuParser parser(0);
  const auto& names = parser.schema().field_names;
  ASSERT_EQ(names.size(), 23u);
  EXPECT_EQ(names[0], "hour_of_day");
  EXPECT_EQ(names[1], "weekday");
  EXPECT_EQ(names[2], "C1");
  EXPECT_EQ(names[3], "banner_pos");
  EXPECT_EQ(names[15], "C14");
  EXPECT_EQ(names[22], "C21");
  EXPECT_EQ(parser.header_lines(), 1);
}

TEST(AvazuParserTest, HeaderIsChecked) {
  AvazuParser parser(0);
  EXPECT_TRUE(parser.CheckHeader(AvazuHeader()).ok());
  std::string upper = AvazuHeader();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(parser.CheckHeader(upper).ok());
  EXPECT_TRUE(parser.CheckHeader(std::string("\xef\xbb\xbf") + AvazuHeader()).ok());
  EXPECT_TRUE(parser.CheckHeader("id , click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,"
                                 "app_domain,app_category,device_id,device_ip,device_model,device_type,"
                                 "device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21")
                  .ok());

  Status renamed = parser.CheckHeader(std::string(AvazuHeader()).replace(9, 4, "hours"));
  EXPECT_EQ(renamed.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(renamed.message().find("column 3 is 'hours', expected 'hour'"), std::string::npos) << renamed.message();
  Status extra = parser.CheckHeader(std::string(AvazuHeader()) + ",C22");
  EXPECT_NE(extra.message().find("25 columns"), std::string::npos) << extra.message();
  EXPECT_FALSE(parser.CheckHeader(AvazuLine()).ok());  // data where a header belongs
  EXPECT_FALSE(parser.CheckHeader("").ok());
}

TEST(AvazuParserTest, ParsesHourIntoHourOfDayAndRealWeekday) {
  AvazuParser parser(0);
  FeatureHasher hasher(23, 0);
  struct Case {
    const char* hour;
    int hour_of_day;
    int weekday;  // 0 = Monday
  } cases[] = {{"14102100", 0, 1},   // 2014-10-21, Tuesday (first day of the Avazu data)
               {"14103023", 23, 3},  // 2014-10-30, Thursday
               {"16022912", 12, 0},  // 2016-02-29 (leap day), Monday
               {"00010105", 5, 5},   // 2000-01-01, Saturday
               {"99123100", 0, 3}};  // 2099-12-31, Thursday
  for (const Case& c : cases) {
    Parsed p = ParseLine(parser, AvazuLine("1", "1", c.hour));
    ASSERT_TRUE(p.ok) << c.hour << ": " << p.error.detail;
    EXPECT_EQ(p.label, 1.0f);
    EXPECT_EQ(p.keys[0], hasher.IntKey(0, IntKeyKind::kRawValue, c.hour_of_day)) << c.hour;
    EXPECT_EQ(p.keys[1], hasher.IntKey(1, IntKeyKind::kRawValue, c.weekday)) << c.hour;
    for (int f = 0; f < 23; ++f) EXPECT_EQ(KeyTable(p.keys[f]), f);
  }
  EXPECT_EQ(AvazuParser::Weekday(1970, 1, 1), 3);
  EXPECT_EQ(AvazuParser::Weekday(1900, 3, 1), 3);
  EXPECT_EQ(AvazuParser::Weekday(2024, 2, 29), 3);
  EXPECT_TRUE(AvazuParser::IsValidDate(2000, 2, 29));
  EXPECT_FALSE(AvazuParser::IsValidDate(1900, 2, 29));
  EXPECT_FALSE(AvazuParser::IsValidDate(2014, 4, 31));
}

TEST(AvazuParserTest, CategoricalsAndMissingValues) {
  AvazuParser parser(0);
  std::string line = AvazuLine();
  Parsed p = ParseLine(parser, line);
  ASSERT_TRUE(p.ok);
  // Empty site_id (column 5 -> field 4) is the missing key.
  std::string empty_site = line;
  size_t pos = empty_site.find("1fbe01fe");
  empty_site.erase(pos, 8);
  Parsed q = ParseLine(parser, empty_site);
  ASSERT_TRUE(q.ok) << q.error.detail;
  EXPECT_EQ(q.keys[4], FeatureHasher::MissingKey(4));
  EXPECT_NE(p.keys[4], q.keys[4]);
  std::string upper = line;
  upper.replace(pos, 8, "1FBE01FE");
  EXPECT_EQ(ParseLine(parser, upper).keys[4], p.keys[4]);
}

TEST(AvazuParserTest, RejectsMalformedLines) {
  AvazuParser parser(0);
  struct Case {
    std::string line;
    MalformedReason reason;
    int column;
    const char* detail_part;
  } cases[] = {
      {AvazuLine() + ",x", MalformedReason::kWrongColumnCount, -1, "got 25"},
      {AvazuLine().substr(0, AvazuLine().rfind(',')), MalformedReason::kWrongColumnCount, -1, "got 23"},
      {AvazuLine("12a"), MalformedReason::kBadInteger, 0, "'12a'"},
      {AvazuLine(""), MalformedReason::kBadInteger, 0, "1-20 digits"},
      {AvazuLine("123456789012345678901"), MalformedReason::kBadInteger, 0, "1-20 digits"},
      {AvazuLine("1", "2"), MalformedReason::kBadLabel, 1, "'2'"},
      {AvazuLine("1", "0", "14022900"), MalformedReason::kBadDate, 2, "real date"},  // 2014-02-29
      {AvazuLine("1", "0", "14130100"), MalformedReason::kBadDate, 2, "'14130100'"},
      {AvazuLine("1", "0", "14100024"), MalformedReason::kBadDate, 2, "hour 00-23"},
      {AvazuLine("1", "0", "14100000"), MalformedReason::kBadDate, 2, "real date"},
      {AvazuLine("1", "0", "1410210"), MalformedReason::kBadDate, 2, "YYMMDDHH"},
      {AvazuLine("1", "0", "14a02100"), MalformedReason::kBadDate, 2, "YYMMDDHH"},
      {AvazuLine("1", "0", "-4102100"), MalformedReason::kBadDate, 2, "YYMMDDHH"},
  };
  for (const Case& c : cases) {
    Parsed p = ParseLine(parser, c.line);
    EXPECT_FALSE(p.ok) << c.line;
    EXPECT_EQ(p.error.reason, c.reason) << c.line << ": " << p.error.detail;
    EXPECT_EQ(p.error.column, c.column) << c.line;
    EXPECT_NE(p.error.detail.find(c.detail_part), std::string::npos) << p.error.detail;
  }
  std::string control = AvazuLine();
  control.replace(control.find("ecad2386"), 1, "\x02");
  Parsed p = ParseLine(parser, control);
  EXPECT_EQ(p.error.reason, MalformedReason::kControlCharacter);
  EXPECT_EQ(parser.ColumnName(p.error.column), "app_id");
}

}  // namespace
}  // namespace ctrps::worker
