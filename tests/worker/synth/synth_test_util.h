// Helpers shared by the synthetic-data tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "worker/synth/synth_options.h"

namespace ctrps::worker::synth::testing {

// A fresh, empty directory for one test. The process id keeps concurrent
// runs of the same test (ctest -j) apart.
inline std::string FreshTestDir(const std::string& name) {
  const char* root = std::getenv("CTRPS_TEST_TMPDIR");
  std::string dir = std::string(root ? root : "/tmp") + "/synth_" + name + "_" +
                    std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Small, quiet options: thousands of keys instead of tens of millions.
inline SynthOptions SmallOptions(DataFormat format, const std::string& dir, int64_t rows) {
  SynthOptions o;
  o.format = format;
  o.out_dir = dir;
  o.train_rows = rows;
  o.vocab_scale = 0.001;
  o.show_progress = false;
  return o;
}

}  // namespace ctrps::worker::synth::testing
