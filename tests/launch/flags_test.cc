#include "launch/flags.h"

#include <gtest/gtest.h>

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"config", "FILE", "config"}, {"set", "K=V", "override", true}, {"rows", "N", "rows"},
    {"verbose", "", "switch"}};

TEST(FlagsTest, ParsesForms) {
  auto f = Flags::Parse({"--config", "a.pbtxt", "--set=x.y=1", "--set", "z=2", "--rows=10",
                         "--verbose"}, kSpecs);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->Get("config"), "a.pbtxt");
  EXPECT_EQ(f->GetAll("set"), (std::vector<std::string>{"x.y=1", "z=2"}));
  EXPECT_EQ(*f->GetInt("rows", 0), 10);
  EXPECT_TRUE(f->Has("verbose"));
  EXPECT_FALSE(f->help());
}

TEST(FlagsTest, Errors) {
  EXPECT_NE(Flags::Parse({"--nope"}, kSpecs).status().message().find("unknown flag --nope"),
            std::string::npos);
  EXPECT_NE(Flags::Parse({"--config"}, kSpecs).status().message().find("needs a value"),
            std::string::npos);
  EXPECT_NE(Flags::Parse({"--config", "a", "--config", "b"}, kSpecs).status().message().find(
                "more than once"),
            std::string::npos);
  EXPECT_FALSE(Flags::Parse({"stray"}, kSpecs).ok());
  EXPECT_FALSE(Flags::Parse({"--verbose=1"}, kSpecs).ok());
  auto f = Flags::Parse({"--rows", "12x"}, kSpecs);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->GetInt("rows", 0).ok());
  EXPECT_TRUE(Flags::Parse({"--help"}, kSpecs)->help());
}

}  // namespace
}  // namespace ctrps::launch
