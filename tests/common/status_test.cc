#include "common/status.h"
#include "common/status_wire.h"

#include <gtest/gtest.h>

namespace ctrps {
namespace {

StatusOr<int> ParsePositive(int x) {
  if (x <= 0) return Status::InvalidArgument("x must be positive, got " + std::to_string(x));
  return x;
}

Status UsesMacros(int x, int* out) {
  ASSIGN_OR_RETURN(int v, ParsePositive(x));
  RETURN_IF_ERROR_CTX(ParsePositive(v - 5).status(), "second pass");
  *out = v;
  return Status::OK();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::OK().ok());
  Status s = Status::Corruption("bad crc");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(s.ToString(), "Corruption: bad crc");
  EXPECT_EQ(s.WithContext("shard 3").message(), "shard 3: bad crc");
  EXPECT_TRUE(Status::OK().WithContext("x").ok());
}

TEST(StatusTest, StatusOrAndMacros) {
  int out = 0;
  EXPECT_TRUE(UsesMacros(10, &out).ok());
  EXPECT_EQ(out, 10);
  Status s = UsesMacros(-1, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  s = UsesMacros(3, &out);
  EXPECT_EQ(s.message(), "second pass: x must be positive, got -2");
}

TEST(StatusDeathTest, ValueOnErrorChecks) {
  StatusOr<int> r = Status::NotFound("nope");
  EXPECT_DEATH((void)r.value(), "value\\(\\) on error StatusOr");
}

}  // namespace
}  // namespace ctrps

namespace ctrps {
namespace {
TEST(StatusTest, EncodeDecodeKeepsCodeAndMessage) {
  Status s = Status::FailedPrecondition("checkpoint.dir x already holds checkpoints");
  Status back = DecodeStatus(EncodeStatus(s));
  EXPECT_EQ(back.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(back.message(), s.message());
  EXPECT_EQ(back.ToString(), s.ToString());
  EXPECT_TRUE(DecodeStatus(EncodeStatus(Status::OK())).ok());
  Status odd = DecodeStatus("not: a status");
  EXPECT_EQ(odd.code(), Status::Code::kInternal);
  EXPECT_EQ(odd.message(), "not: a status");
  EXPECT_EQ(DecodeStatus("99:x").code(), Status::Code::kInternal);
}
}  // namespace
}  // namespace ctrps
