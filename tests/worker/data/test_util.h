// Helpers for the data pipeline tests: a fresh temp directory per test,
// fixture files (plain and gzip), and Criteo/Avazu line builders.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/status.h"

namespace ctrps::worker::testing {

// This process's scratch directory, under $CTRPS_TEST_TMPDIR (set by ctest)
// or /tmp, named by pid so concurrent test processes never share files;
// removed when the process exits.
inline const std::filesystem::path& ProcessDir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      const char* base = std::getenv("CTRPS_TEST_TMPDIR");
      path = std::filesystem::path(base != nullptr && *base ? base : "/tmp") /
             ("ctrps_worker_data_test." + std::to_string(::getpid()));
    }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static Dir dir;
  return dir.path;
}

// A fresh, empty directory for the running test.
inline std::string TestDir() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  std::filesystem::path dir = ProcessDir() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  EXPECT_TRUE(out.good()) << path;
  return path;
}

// Gzip-compresses `content` into `path`, as `members` concatenated gzip
// members (content split evenly).
inline std::string WriteGzip(const std::string& path, const std::string& content, int members = 1) {
  std::remove(path.c_str());
  size_t per = content.size() / members + 1;
  for (int m = 0; m < members; ++m) {
    gzFile gz = gzopen(path.c_str(), "ab");
    EXPECT_NE(gz, nullptr) << path;
    size_t begin = std::min(content.size(), m * per);
    size_t len = std::min(content.size() - begin, per);
    if (len > 0) {
      EXPECT_EQ(gzwrite(gz, content.data() + begin, static_cast<unsigned>(len)), static_cast<int>(len));
    }
    gzclose(gz);
  }
  return path;
}

// The value of a StatusOr that the test expects to be OK (moved out).
template <typename T>
T MustOk(StatusOr<T> result) {
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return std::move(result).value();
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The lines a reader must produce for `content`: split at "\n", one '\r'
// before it removed, no empty line after a final "\n".
inline std::vector<std::string> ExpectedLines(const std::string& content) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    size_t stop = nl == std::string::npos ? content.size() : nl;
    std::string line = content.substr(start, stop - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = stop + 1;
  }
  return lines;
}

// A valid Criteo line: label, 13 integers, 26 categoricals; `ints` and
// `cats` fill the columns in order, missing ones default to "1" / "68fd1e64".
inline std::string CriteoLine(const std::string& label = "1", std::vector<std::string> ints = {},
                              std::vector<std::string> cats = {}) {
  ints.resize(13, "1");
  cats.resize(26, "68fd1e64");
  std::string line = label;
  for (const std::string& v : ints) line += "\t" + v;
  for (const std::string& v : cats) line += "\t" + v;
  return line;
}

inline const char* AvazuHeader() {
  return "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
         "app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,"
         "C18,C19,C20,C21";
}

// A valid Avazu data line with the given id, click and hour.
inline std::string AvazuLine(const std::string& id = "1000009418151094273", const std::string& click = "0",
                             const std::string& hour = "14102100") {
  return id + "," + click + "," + hour +
         ",1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,ddd2926e,44956a24,1,2,"
         "15706,320,50,1722,0,35,-1,79";
}

}  // namespace ctrps::worker::testing
