// Why an input line was skipped, and the tally of what a reader has read.
// Every line a reader sees lands in exactly one bucket of ReadStats, so
// nothing is dropped without being counted:
//   lines == rows + header_lines + malformed_lines().
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ctrps::worker {

// Never renumber: the names are written into logs and metrics, and tests
// index ReadStats::malformed by these values.
enum class MalformedReason : int {
  kEmptyLine = 0,          // a line with no bytes (often a stray trailing newline)
  kLineTooLong = 1,        // longer than LineReaderOptions::max_line_bytes
  kNulByte = 2,            // a 0x00 byte anywhere in the line
  kInvalidUtf8 = 3,        // bytes >= 0x80 that are not well-formed UTF-8
  kControlCharacter = 4,   // a control byte inside a categorical value
  kWrongColumnCount = 5,   // Criteo/Avazu: not exactly the expected columns
  kBadLabel = 6,           // label not 0/1 (libffm also -1/+1)
  kBadInteger = 7,         // not a decimal integer, or out of the int64 range
  kBadNumber = 8,          // libffm: value not a finite decimal number
  kBadDate = 9,            // Avazu hour: not a valid YYMMDDHH
  kBadToken = 10,          // libffm: token not field:feature:value
  kFieldOutOfRange = 11,   // libffm: field index not in [0, num_fields)
  kDuplicateField = 12,    // libffm: the same field twice in one line
};
inline constexpr int kNumMalformedReasons = 13;

// "wrong column count", "bad label", ...
const char* MalformedReasonName(MalformedReason reason);

struct ReadStats {
  int64_t lines = 0;         // lines seen: rows + headers + malformed
  int64_t rows = 0;          // lines turned into examples
  int64_t header_lines = 0;  // file headers checked and not turned into examples
  int64_t bytes = 0;         // bytes of all lines seen, terminators included (uncompressed)
  std::array<int64_t, kNumMalformedReasons> malformed{};  // skipped lines, by reason

  int64_t malformed_lines() const;
  int64_t count(MalformedReason reason) const { return malformed[static_cast<int>(reason)]; }
  void Add(const ReadStats& other);
  // One line: "1000 lines (95.2 MB): 990 rows, 1 header, 9 skipped
  // (wrong column count: 5, bad label: 4)". Reasons with a zero count are
  // left out.
  std::string ToString() const;
};

}  // namespace ctrps::worker
