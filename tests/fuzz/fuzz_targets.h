// Fuzz targets for every reader of bytes ctrps did not just write itself:
// checkpoint shard files and their policy section, checkpoint manifests
// and dense files, wire messages and their blobs, serving bundles and their
// table files, saved models. Each target takes any bytes, feeds them to the
// reader, and uses whatever the reader accepts (so sanitizers see every
// byte it vouches for). A crash, a sanitizer report or an allocation over
// the cap (tests/fuzz/alloc_cap.h) is a failure; a Status error is not.
//
// Shared by fuzz_test.cc (mutations of valid seeds for a bounded time,
// under ctest) and ctrps_fuzz.cc (libFuzzer, clang builds).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctrps::testing {

struct FuzzTarget {
  const char* name;
  // Valid inputs to mutate (written by ctrps itself).
  std::vector<std::string> (*seeds)();
  void (*run)(std::string_view bytes);
};

// Every target, in a fixed order.
const std::vector<FuzzTarget>& FuzzTargets();

// Where targets that read files put their input (created on first use).
const std::string& FuzzScratchDir();

}  // namespace ctrps::testing
