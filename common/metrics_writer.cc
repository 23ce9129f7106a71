#include "common/metrics_writer.h"

#include <cerrno>
#include <cmath>
#include <cstring>

namespace ctrps {

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void JsonLine::Key(const std::string& key) {
  if (!body_.empty()) body_ += ",";
  body_ += "\"" + JsonEscape(key) + "\":";
}

JsonLine& JsonLine::Add(const std::string& key, double value) {
  Key(key);
  if (!std::isfinite(value)) {
    body_ += "null";  // JSON has no NaN/Inf
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", value);
    body_ += buf;
  }
  return *this;
}

JsonLine& JsonLine::Add(const std::string& key, long long value) {
  Key(key);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Add(const std::string& key, const std::string& value) {
  Key(key);
  body_ += "\"" + JsonEscape(value) + "\"";
  return *this;
}

JsonLine& JsonLine::Add(const std::string& key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

Status MetricsWriter::Open(const std::string& path, bool truncate) {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  path_ = path;
  if (path.empty()) return Status::OK();
  file_ = std::fopen(path.c_str(), truncate ? "w" : "a");
  if (!file_) return Status::IOError("cannot open metrics file " + path + ": " + std::strerror(errno));
  return Status::OK();
}

void MetricsWriter::Write(const JsonLine& line) {
  if (!file_) return;
  std::string s = line.str();
  s += '\n';
  std::fwrite(s.data(), 1, s.size(), file_);
  std::fflush(file_);
}

}  // namespace ctrps
