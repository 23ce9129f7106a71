// Byte-level helpers shared by the parsers: line validation, strict number
// parsing, and quoting of bad input for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "worker/data/read_stats.h"

namespace ctrps::worker {

// Checks the bytes of a whole line: no NUL, and well-formed UTF-8 (no
// overlong forms, surrogates or code points above U+10FFFF). Pure ASCII
// lines take a word-at-a-time fast path. Returns true if the line is fine;
// otherwise sets *reason and *offset (the first bad byte) and returns false.
bool CheckLineBytes(std::string_view line, MalformedReason* reason, size_t* offset);

// True for C0 control bytes and DEL (0x00-0x1f, 0x7f).
inline bool IsControlByte(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Word-at-a-time versions, on 8 bytes packed in a uint64_t.
inline constexpr uint64_t kEveryByte = 0x0101010101010101ULL;
inline constexpr uint64_t kEveryHighBit = 0x8080808080808080ULL;
// Any byte zero.
inline bool HasZeroByte(uint64_t w) { return ((w - kEveryByte) & ~w & kEveryHighBit) != 0; }
// Any byte a control byte. Exact as an "any" test; it does not say which.
inline bool HasControlByte(uint64_t w) {
  const bool below_space = ((w - kEveryByte * 0x20) & ~w & kEveryHighBit) != 0;
  return below_space || HasZeroByte(w ^ (kEveryByte * 0x7f));
}
// ASCII 'A'-'Z' lower-cased in all 8 bytes; every other byte unchanged.
inline uint64_t LowerAsciiBytes(uint64_t w) {
  const uint64_t low7 = w & ~kEveryHighBit;
  const uint64_t at_least_a = low7 + kEveryByte * (0x80 - 'A');
  const uint64_t above_z = low7 + kEveryByte * (0x80 - 'Z' - 1);
  const uint64_t upper = (at_least_a ^ above_z) & ~w & kEveryHighBit;
  return w | (upper >> 2);  // 0x80 >> 2 is the 0x20 case bit
}

// Non-empty and only '0'-'9'.
inline bool IsAllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// `s` without leading and trailing spaces and tabs.
inline std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A decimal integer: optional '+' or '-', then 1-19 digits, nothing else,
// within the int64 range. No whitespace, no "0x", no exponent.
bool ParseInt64(std::string_view s, int64_t* out);

// A finite decimal floating-point number ("1", "-0.5", "3e-2"). Rejects
// empty strings, trailing bytes, inf and nan.
bool ParseFiniteDouble(std::string_view s, double* out);

// The token in single quotes for a message, non-printable bytes written as
// \xNN and anything past max_bytes cut to "...".
std::string QuoteForMessage(std::string_view s, size_t max_bytes = 48);

}  // namespace ctrps::worker
