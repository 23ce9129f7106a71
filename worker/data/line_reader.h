// Splits a ByteSource into lines without allocating per line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "worker/data/byte_source.h"

namespace ctrps::worker {

struct LineReaderOptions {
  // Bytes requested from the source per read(2) / inflate call.
  size_t read_buffer_bytes = 1 << 20;
  // The longest line accepted, terminator excluded. A longer line is not
  // buffered: it is reported with `too_long` and skipped through its end.
  size_t max_line_bytes = 1 << 20;

  // InvalidArgument unless 4 KiB <= read_buffer_bytes <= 1 GiB and
  // 1 <= max_line_bytes <= 1 GiB.
  Status Validate() const;
};

struct Line {
  // The line without its "\n" and without one '\r' just before it (so CRLF
  // files read like LF files), and the first line of a file without a UTF-8
  // byte order mark. Valid until the next call on the reader.
  // For a too-long line: its first bytes only (up to 64), for messages.
  std::string_view text;
  uint64_t offset = 0;       // where the line starts, in the reader's stream coordinates
  uint64_t size_bytes = 0;   // whole line including its terminator
  bool too_long = false;
};

// Not thread-safe. The last line of a stream may lack its "\n"; a stream
// ending in "\n" has no empty line after it.
class LineReader {
 public:
  // `start_offset`: the stream coordinate of the source's first byte (the
  // file offset the source was opened at), so offsets are file offsets.
  // `first_line`: lines_read() at the start (a reader resumed mid-stream).
  LineReader(std::unique_ptr<ByteSource> source, uint64_t start_offset,
             const LineReaderOptions& options, uint64_t first_line = 0);

  // Reads the next line into *line. Returns false at the end of the stream.
  // Errors come from the source; after one, the reader is dead.
  [[nodiscard]] StatusOr<bool> Next(Line* line);

  // Consumes bytes through the next "\n" however far away it is (used to
  // skip the partial line at the start of a byte range). Returns false if
  // the stream ended first. Counts as a line for lines_read().
  [[nodiscard]] StatusOr<bool> SkipLine();

  // Stream offset of the next unread line (one past the last "\n" consumed).
  uint64_t offset() const { return offset_; }
  // Lines returned or skipped so far.
  uint64_t lines_read() const { return lines_read_; }

 private:
  // Reads more bytes after compacting the buffer. Returns false at end.
  StatusOr<bool> Fill();
  // Discards bytes through the next "\n"; adds them to *skipped.
  StatusOr<bool> DiscardThroughNewline(uint64_t* skipped);

  std::unique_ptr<ByteSource> source_;
  LineReaderOptions options_;
  std::unique_ptr<char[]> buf_;
  size_t capacity_;
  size_t pos_ = 0;      // start of unconsumed data in buf_
  size_t end_ = 0;      // end of valid data in buf_
  size_t scanned_ = 0;  // [pos_, scanned_) is known to hold no "\n"
  bool eof_ = false;
  uint64_t offset_;
  uint64_t lines_read_ = 0;
  std::string too_long_prefix_;
};

}  // namespace ctrps::worker
