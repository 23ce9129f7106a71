// Fresh temporary directories for storage tests, under $CTRPS_TEST_TMPDIR
// (set by ctest) or /tmp.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ctrps::storage::testing {

// Returns an empty directory path (created, unique per call and process).
inline std::string FreshDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const char* root = std::getenv("CTRPS_TEST_TMPDIR");
  std::string dir = std::string(root && *root ? root : "/tmp") + "/storage-" + tag + "-" +
                    std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace ctrps::storage::testing
