#include "worker/data/input_files.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/worker/data/test_util.h"

namespace ctrps::worker {
namespace {

using testing::TestDir;
using testing::WriteFile;

std::vector<std::string> Paths(const std::vector<InputFile>& files) {
  std::vector<std::string> out;
  for (const InputFile& f : files) out.push_back(f.path);
  return out;
}

TEST(ResolveInputFilesTest, SingleFileWithSizeAndGzipFlag) {
  std::string dir = TestDir();
  WriteFile(dir + "/a.txt", "12345");
  testing::WriteGzip(dir + "/b.dat", "zzz\n");
  auto files = ResolveInputFiles(dir + "/a.txt");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].size_bytes, 5u);
  EXPECT_FALSE((*files)[0].gzip);
  auto gz = ResolveInputFiles(dir + "/b.dat");
  ASSERT_TRUE(gz.ok());
  EXPECT_TRUE((*gz)[0].gzip);
}

TEST(ResolveInputFilesTest, ListsAndGlobsAreSortedAndDeduplicated) {
  std::string dir = TestDir();
  for (const char* name : {"part-2", "part-10", "part-1", "other"}) WriteFile(dir + "/" + name, "x\n");
  auto files = ResolveInputFiles(" " + dir + "/part-2 , " + dir + "/part-* ,," + dir + "/other");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(Paths(*files), (std::vector<std::string>{dir + "/other", dir + "/part-1", dir + "/part-10",
                                                      dir + "/part-2"}));
}

TEST(ResolveInputFilesTest, ErrorsNameTheProblem) {
  std::string dir = TestDir();
  auto missing = ResolveInputFiles(dir + "/missing.txt");
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.txt"), std::string::npos);

  auto no_match = ResolveInputFiles(dir + "/*.csv");
  EXPECT_EQ(no_match.status().code(), Status::Code::kNotFound);
  EXPECT_NE(no_match.status().message().find("matches no files"), std::string::npos);

  auto directory = ResolveInputFiles(dir);
  EXPECT_EQ(directory.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(directory.status().message().find("directory"), std::string::npos);

  EXPECT_EQ(ResolveInputFiles(" , ").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ResolveInputFiles("").status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ctrps::worker
