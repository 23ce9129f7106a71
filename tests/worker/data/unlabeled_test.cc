// Files without labels (Criteo's test.txt, Avazu's test.csv, libffm lines
// of features only): the unlabeled parsers give exactly the keys and values
// the labeled ones give for the same line with its label, refuse lines of
// the other shape with a clear message, and LooksLabeled tells the shapes
// apart from a first line.
#include <gtest/gtest.h>

#include "tests/worker/data/parser_test_util.h"
#include "tests/worker/data/test_util.h"
#include "worker/data/avazu_parser.h"
#include "worker/data/criteo_parser.h"
#include "worker/data/libffm_parser.h"

namespace ctrps::worker {
namespace {

using testing::AvazuHeader;
using testing::AvazuLine;
using testing::CriteoLine;
using testing::Parsed;
using testing::ParseLine;

// "1\tx\ty..." -> "x\ty...": the line without its first column.
std::string DropFirstColumn(const std::string& line, char sep) {
  return line.substr(line.find(sep) + 1);
}

// Avazu's second column (click) removed.
std::string DropSecondColumn(const std::string& line) {
  const size_t a = line.find(',');
  const size_t b = line.find(',', a + 1);
  return line.substr(0, a) + line.substr(b);
}

TEST(UnlabeledTest, CriteoWithoutLabelGivesTheLabeledKeys) {
  CriteoParser labeled(3, IntegerEncoding::kLogBucket);
  CriteoParser unlabeled(3, IntegerEncoding::kLogBucket, /*labeled=*/false);
  const std::string full = CriteoLine("1", {"5", "-1", "", "0", "100000"}, {"3a171ecb", "", "05db9164"});
  Parsed a = ParseLine(labeled, full);
  Parsed b = ParseLine(unlabeled, DropFirstColumn(full, '\t'));
  ASSERT_TRUE(a.ok && b.ok) << b.error.detail;
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(b.label, 0.0f);
  // The labeled shape is refused by the unlabeled parser, and the other way round.
  Parsed c = ParseLine(unlabeled, full);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.error.detail.find("expected 39 tab-separated columns"), std::string::npos)
      << c.error.detail;
  EXPECT_NE(c.error.detail.find("got 40"), std::string::npos) << c.error.detail;
  Parsed d = ParseLine(labeled, DropFirstColumn(full, '\t'));
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.detail.find("the line has 39 columns: no label"), std::string::npos)
      << d.error.detail;
  // Errors still name the canonical column.
  Parsed e = ParseLine(unlabeled, DropFirstColumn(CriteoLine("0", {"x"}), '\t'));
  EXPECT_FALSE(e.ok);
  EXPECT_EQ(unlabeled.ColumnName(e.error.column), "I1");
}

TEST(UnlabeledTest, AvazuWithoutClickGivesTheLabeledKeys) {
  AvazuParser labeled(0);
  AvazuParser unlabeled(0, /*labeled=*/false);
  const std::string header = AvazuHeader();
  EXPECT_TRUE(unlabeled.CheckHeader(DropSecondColumn(header)).ok());
  Status s = unlabeled.CheckHeader(header);
  EXPECT_NE(s.message().find("column 2 is 'click', expected 'hour'"), std::string::npos)
      << s.ToString();
  EXPECT_FALSE(labeled.CheckHeader(DropSecondColumn(header)).ok());
  const std::string full = AvazuLine("10000174058809263569", "1", "14103100");
  Parsed a = ParseLine(labeled, full);
  Parsed b = ParseLine(unlabeled, DropSecondColumn(full));
  ASSERT_TRUE(a.ok && b.ok) << b.error.detail;
  EXPECT_EQ(a.label, 1.0f);
  EXPECT_EQ(b.label, 0.0f);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.values, b.values);
  Parsed c = ParseLine(unlabeled, full);  // the click where the hour belongs
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(unlabeled.ColumnName(c.error.column), "hour");
  Parsed d = ParseLine(unlabeled, DropSecondColumn(full) + ",1");
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.detail.find("expected 23 (no click) comma-separated columns, got 24"),
            std::string::npos) << d.error.detail;
}

TEST(UnlabeledTest, LibffmFeaturesOnly) {
  LibffmParser labeled(3, 0);
  LibffmParser unlabeled(3, 0, /*labeled=*/false);
  Parsed a = ParseLine(labeled, "1 0:5:1 2:7:0.5");
  Parsed b = ParseLine(unlabeled, "0:5:1 2:7:0.5");
  ASSERT_TRUE(a.ok && b.ok) << b.error.detail;
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(b.label, 0.0f);
  Parsed c = ParseLine(unlabeled, "1 0:5:1");  // a label where a feature belongs
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(unlabeled.ColumnName(c.error.column), "token 1");
  Parsed d = ParseLine(unlabeled, "  \t ");
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.detail.find("only whitespace"), std::string::npos);
}

TEST(UnlabeledTest, LooksLabeledFromTheFirstLine) {
  const std::string criteo = CriteoLine("0");
  EXPECT_TRUE(LooksLabeled(DataFormat::kCriteo, criteo));
  EXPECT_FALSE(LooksLabeled(DataFormat::kCriteo, DropFirstColumn(criteo, '\t')));
  EXPECT_TRUE(LooksLabeled(DataFormat::kCriteo, "garbage"));  // the labeled parser reports it
  EXPECT_TRUE(LooksLabeled(DataFormat::kAvazu, AvazuHeader()));
  EXPECT_FALSE(LooksLabeled(DataFormat::kAvazu, DropSecondColumn(AvazuHeader())));
  EXPECT_FALSE(LooksLabeled(DataFormat::kAvazu, "ID, HOUR ,C1"));
  EXPECT_TRUE(LooksLabeled(DataFormat::kAvazu, ""));
  EXPECT_TRUE(LooksLabeled(DataFormat::kLibffm, "-1 0:1:1"));
  EXPECT_FALSE(LooksLabeled(DataFormat::kLibffm, "  0:1:1 1:2:1"));
  EXPECT_TRUE(LooksLabeled(DataFormat::kLibffm, ""));
}

}  // namespace
}  // namespace ctrps::worker
