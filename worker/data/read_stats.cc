#include "worker/data/read_stats.h"

#include <cstdio>

namespace ctrps::worker {

const char* MalformedReasonName(MalformedReason reason) {
  switch (reason) {
    case MalformedReason::kEmptyLine: return "empty line";
    case MalformedReason::kLineTooLong: return "line too long";
    case MalformedReason::kNulByte: return "NUL byte";
    case MalformedReason::kInvalidUtf8: return "invalid UTF-8";
    case MalformedReason::kControlCharacter: return "control character";
    case MalformedReason::kWrongColumnCount: return "wrong column count";
    case MalformedReason::kBadLabel: return "bad label";
    case MalformedReason::kBadInteger: return "bad integer";
    case MalformedReason::kBadNumber: return "bad number";
    case MalformedReason::kBadDate: return "bad date";
    case MalformedReason::kBadToken: return "bad token";
    case MalformedReason::kFieldOutOfRange: return "field out of range";
    case MalformedReason::kDuplicateField: return "duplicate field";
  }
  return "unknown reason";
}

int64_t ReadStats::malformed_lines() const {
  int64_t total = 0;
  for (int64_t n : malformed) total += n;
  return total;
}

void ReadStats::Add(const ReadStats& other) {
  lines += other.lines;
  rows += other.rows;
  header_lines += other.header_lines;
  bytes += other.bytes;
  for (int i = 0; i < kNumMalformedReasons; ++i) malformed[i] += other.malformed[i];
}

std::string ReadStats::ToString() const {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%lld lines (%.1f MB): %lld rows, %lld header%s, %lld skipped",
                static_cast<long long>(lines), bytes / 1e6, static_cast<long long>(rows),
                static_cast<long long>(header_lines), header_lines == 1 ? "" : "s",
                static_cast<long long>(malformed_lines()));
  std::string out = buf;
  if (malformed_lines() == 0) return out;
  out += " (";
  bool first = true;
  for (int i = 0; i < kNumMalformedReasons; ++i) {
    if (malformed[i] == 0) continue;
    if (!first) out += ", ";
    first = false;
    out += MalformedReasonName(static_cast<MalformedReason>(i));
    out += ": ";
    out += std::to_string(malformed[i]);
  }
  out += ")";
  return out;
}

}  // namespace ctrps::worker
