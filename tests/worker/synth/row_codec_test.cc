#include "worker/synth/row_codec.h"

#include <gtest/gtest.h>

#include "tests/worker/synth/synth_test_util.h"

namespace ctrps::worker::synth {
namespace {

using testing::SmallOptions;

TEST(RowCodecTest, HexTokensAreAnInvertibleBijection) {
  for (int field = 0; field < 40; ++field) {
    for (int64_t id : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{12345}, int64_t{4000000000}}) {
      EXPECT_EQ(HexTokenId(field, HexToken(field, id)), id);
    }
  }
  EXPECT_NE(HexToken(3, 1), HexToken(4, 1));  // keyed by field
  EXPECT_NE(HexToken(3, 1), HexToken(3, 2));
}

TEST(RowCodecTest, AvazuHourCodes) {
  EXPECT_EQ(AvazuHourCode(0), 14102100);
  EXPECT_EQ(AvazuHourCode(23), 14102123);
  EXPECT_EQ(AvazuHourCode(24 * 10), 14103100);      // Oct 31: valid
  EXPECT_EQ(AvazuHourCode(24 * 11 + 5), 14110105);  // Nov 1: test
  EXPECT_EQ(AvazuHourCode(24 * 71), 14123100);
  EXPECT_EQ(AvazuHourCode(24 * 72), 15010100);      // year rollover
}

TEST(RowCodecTest, CriteoRoundTripAndLayout) {
  PlantedModel model = PlantedModel::Create(SmallOptions(DataFormat::kCriteo, "/unused", 10));
  Rng rng(1);
  for (int i = 0; i < 200; ++i) {
    SynthRow row;
    model.SampleRow(rng, &row);
    std::string line;
    AppendRow(model, row, i % 2, 0, 0, &line);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 39);
    ParsedRow parsed;
    ASSERT_TRUE(ParseRow(model, line, &parsed).ok()) << line;
    EXPECT_EQ(parsed.label, i % 2);
    EXPECT_EQ(parsed.row.values, row.values);
  }
}

TEST(RowCodecTest, AvazuRoundTripAndHeader) {
  PlantedModel model = PlantedModel::Create(SmallOptions(DataFormat::kAvazu, "/unused", 10));
  EXPECT_EQ(DataHeader(DataFormat::kAvazu),
            "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
            "app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,"
            "C16,C17,C18,C19,C20,C21\n");
  EXPECT_EQ(DataHeader(DataFormat::kCriteo), "");
  Rng rng(2);
  SynthRow row;
  model.SampleRow(rng, &row);
  row.hour_of_day = 7;
  std::string line;
  AppendRow(model, row, 1, 18446744073709551615ULL, AvazuHourCode(31), &line);
  line.pop_back();
  EXPECT_EQ(line.substr(0, 32), "18446744073709551615,1,14102207,");
  ParsedRow parsed;
  ASSERT_TRUE(ParseRow(model, line, &parsed).ok()) << line;
  EXPECT_EQ(parsed.avazu_id, 18446744073709551615ULL);
  EXPECT_EQ(parsed.hour_code, 14102207);
  EXPECT_EQ(parsed.row.hour_of_day, 7);
  EXPECT_EQ(parsed.row.values, row.values);
}

TEST(RowCodecTest, ParseRejectsBadLinesNamingTheColumn) {
  PlantedModel model = PlantedModel::Create(SmallOptions(DataFormat::kCriteo, "/unused", 10));
  Rng rng(3);
  SynthRow row;
  model.SampleRow(rng, &row);
  std::string good;
  AppendRow(model, row, 0, 0, 0, &good);
  good.pop_back();
  ParsedRow parsed;
  auto with_column = [&](int col, const std::string& value) {
    std::vector<std::string> cols;
    size_t start = 0;
    for (size_t tab; (tab = good.find('\t', start)) != std::string::npos; start = tab + 1) {
      cols.push_back(good.substr(start, tab - start));
    }
    cols.push_back(good.substr(start));
    cols[col] = value;
    std::string line = cols[0];
    for (size_t i = 1; i < cols.size(); ++i) line += "\t" + cols[i];
    return line;
  };
  struct Case {
    int col;
    std::string value, expect;
  } cases[] = {
      {0, "2", "column 1 (label)"},
      {3, "12x", "column 4 (I3)"},
      {14, "ABCDEF12", "column 15 (C1)"},   // upper case
      {14, "abc", "column 15 (C1)"},        // too short
      {14, "ffffffff", "column 15 (C1)"},   // not in the vocabulary
  };
  for (const Case& c : cases) {
    Status st = ParseRow(model, with_column(c.col, c.value), &parsed);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << c.value;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << st.message();
  }
  Status short_line = ParseRow(model, "1\t2\t3", &parsed);
  EXPECT_NE(short_line.message().find("expected 40 columns, found 3"), std::string::npos);
  ASSERT_TRUE(ParseRow(model, with_column(3, ""), &parsed).ok());  // empty integer: missing
  EXPECT_EQ(parsed.row.values[2], kMissingNumeric);
  ASSERT_TRUE(ParseRow(model, with_column(2, "-3"), &parsed).ok());  // negative integer
  EXPECT_EQ(parsed.row.values[1], -3);
}

}  // namespace
}  // namespace ctrps::worker::synth
