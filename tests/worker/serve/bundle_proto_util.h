// Reading and rewriting a bundle's model.pb, for tests that damage or inspect it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "tests/worker/serve/serve_test_util.h"
#include "worker/serve/bundle.pb.h"

namespace ctrps::worker::serve::testing {

inline ::ctrps::serve::proto::BundleModel ReadProto(const std::string& dir) {
  ::ctrps::serve::proto::BundleModel p;
  std::ifstream in(dir + "/model.pb", std::ios::binary);
  EXPECT_TRUE(p.ParseFromIstream(&in)) << dir;
  return p;
}

inline void WriteProto(const std::string& dir, const ::ctrps::serve::proto::BundleModel& p) {
  std::ofstream out(dir + "/model.pb", std::ios::binary | std::ios::trunc);
  ASSERT_TRUE(p.SerializeToOstream(&out));
}

// A copy of bundle `from` at TmpDir(name) whose model.pb is `edit`ed; its path.
inline std::string EditedCopy(const std::string& from, const std::string& name,
                              const std::function<void(::ctrps::serve::proto::BundleModel*)>& edit) {
  const std::string to = TmpDir(name);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  ::ctrps::serve::proto::BundleModel p = ReadProto(to);
  edit(&p);
  WriteProto(to, p);
  return to;
}

}  // namespace ctrps::worker::serve::testing
