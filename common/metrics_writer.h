// Machine-readable metrics: one JSON object per line, appended to a file.
// Thread-compatible (one writer per thread, or external locking).
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ctrps {

// A flat JSON object built field by field: JsonLine().Add("step", 10).Add("auc", 0.79).
class JsonLine {
 public:
  JsonLine& Add(const std::string& key, double value);
  JsonLine& Add(const std::string& key, long long value);
  JsonLine& Add(const std::string& key, int value) { return Add(key, static_cast<long long>(value)); }
  JsonLine& Add(const std::string& key, long value) { return Add(key, static_cast<long long>(value)); }
  JsonLine& Add(const std::string& key, unsigned long value) { return Add(key, static_cast<long long>(value)); }
  JsonLine& Add(const std::string& key, unsigned long long value) { return Add(key, static_cast<long long>(value)); }
  JsonLine& Add(const std::string& key, const std::string& value);
  JsonLine& Add(const std::string& key, const char* value) { return Add(key, std::string(value)); }
  JsonLine& Add(const std::string& key, bool value);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(const std::string& key);
  std::string body_;
};

std::string JsonEscape(const std::string& s);

class MetricsWriter {
 public:
  MetricsWriter() = default;  // a disabled writer: Write is a no-op
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Opens `path` for appending (truncating if `truncate`). Empty path: disabled.
  [[nodiscard]] Status Open(const std::string& path, bool truncate);
  // Writes one line and flushes, so a crash loses at most the line in flight.
  void Write(const JsonLine& line);
  const std::string& path() const { return path_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
};

}  // namespace ctrps
