#include "worker/data/text_util.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ctrps::worker {
namespace {

// Validates one UTF-8 sequence starting at s[i] (s[i] >= 0x80); returns its
// length, or 0 if malformed.
size_t Utf8SequenceLength(const unsigned char* s, size_t i, size_t n) {
  unsigned char c = s[i];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
  }
  return len;
}

}  // namespace

bool CheckLineBytes(std::string_view line, MalformedReason* reason, size_t* offset) {
  const auto* s = reinterpret_cast<const unsigned char*>(line.data());
  const size_t n = line.size();
  // Fast path: 8 bytes at a time, looking for a zero byte or a high bit.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    if (HasZeroByte(w) || (w & kEveryHighBit) != 0) break;
  }
  while (i < n) {
    unsigned char c = s[i];
    if (c == 0) {
      *reason = MalformedReason::kNulByte;
      *offset = i;
      return false;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = Utf8SequenceLength(s, i, n);
    if (len == 0) {
      *reason = MalformedReason::kInvalidUtf8;
      *offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  const char* begin = s.data();
  const char* end = begin + s.size();
  if (*begin == '+') {
    ++begin;
    // "+-5" must fail: from_chars would accept the '-'.
    if (begin == end || *begin == '-') return false;
  }
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  return ec == std::errc() && ptr == end;
}

bool ParseFiniteDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  const char* begin = s.data();
  const char* end = begin + s.size();
  if (*begin == '+') {
    ++begin;
    if (begin == end || *begin == '-') return false;
  }
  auto [ptr, ec] = std::from_chars(begin, end, *out, std::chars_format::general);
  return ec == std::errc() && ptr == end && std::isfinite(*out);
}

std::string QuoteForMessage(std::string_view s, size_t max_bytes) {
  std::string out = "'";
  size_t n = s.size() < max_bytes ? s.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  out += "'";
  if (s.size() > max_bytes) out += "...";
  return out;
}

}  // namespace ctrps::worker
