// Reading and rewriting a bundle's model.pb, for tests that damage or inspect it.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

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

}  // namespace ctrps::worker::serve::testing
