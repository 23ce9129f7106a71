#include "worker/data/line_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ctrps::worker {
namespace {
constexpr size_t kTooLongPrefixBytes = 64;
}  // namespace

Status LineReaderOptions::Validate() const {
  if (read_buffer_bytes < (4 << 10) || read_buffer_bytes > (size_t{1} << 30)) {
    return Status::InvalidArgument("read_buffer_bytes must be in [4 KiB, 1 GiB], got " +
                                   std::to_string(read_buffer_bytes));
  }
  if (max_line_bytes < 1 || max_line_bytes > (size_t{1} << 30)) {
    return Status::InvalidArgument("max_line_bytes must be in [1, 1 GiB], got " +
                                   std::to_string(max_line_bytes));
  }
  return Status::OK();
}

LineReader::LineReader(std::unique_ptr<ByteSource> source, uint64_t start_offset,
                       const LineReaderOptions& options, uint64_t first_line)
    : source_(std::move(source)), options_(options), offset_(start_offset),
      lines_read_(first_line) {
  CHECK(options.Validate().ok()) << options.Validate().ToString();
  // Room for a whole maximal line plus a full read, so Fill always makes
  // progress while a line of at most max_line_bytes is pending.
  capacity_ = options.read_buffer_bytes + options.max_line_bytes + 1;
  buf_.reset(new char[capacity_]);
}

StatusOr<bool> LineReader::Fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    scanned_ -= pos_;
    pos_ = 0;
  }
  size_t room = capacity_ - end_;
  CHECK_GT(room, 0u);
  ASSIGN_OR_RETURN(size_t got, source_->Read(buf_.get() + end_, std::min(room, options_.read_buffer_bytes)));
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += got;
  return true;
}

StatusOr<bool> LineReader::Next(Line* line) {
  while (true) {
    const char* nl = static_cast<const char*>(std::memchr(buf_.get() + scanned_, '\n', end_ - scanned_));
    size_t len = nl != nullptr ? static_cast<size_t>(nl - (buf_.get() + pos_)) : end_ - pos_;
    if (len > options_.max_line_bytes) {
      // Keep a prefix for the message, then drop the line without buffering it.
      too_long_prefix_.assign(buf_.get() + pos_, std::min(len, kTooLongPrefixBytes));
      line->offset = offset_;
      uint64_t skipped = 0;
      ASSIGN_OR_RETURN(bool found_newline, DiscardThroughNewline(&skipped));
      (void)found_newline;  // a too-long last line without "\n" is still a line
      line->text = too_long_prefix_;
      line->size_bytes = skipped;
      line->too_long = true;
      offset_ += skipped;
      ++lines_read_;
      return true;
    }
    if (nl != nullptr || (eof_ && end_ > pos_)) {
      const char* begin = buf_.get() + pos_;
      size_t consumed = len + (nl != nullptr ? 1 : 0);
      size_t text_len = len;
      if (text_len > 0 && begin[text_len - 1] == '\r') --text_len;
      const char* text = begin;
      if (offset_ == 0 && text_len >= 3 && std::memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;  // a UTF-8 byte order mark at the file's start is not data
        text_len -= 3;
      }
      line->text = std::string_view(text, text_len);
      line->offset = offset_;
      line->size_bytes = consumed;
      line->too_long = false;
      pos_ += consumed;
      scanned_ = pos_;
      offset_ += consumed;
      ++lines_read_;
      return true;
    }
    scanned_ = end_;
    ASSIGN_OR_RETURN(bool more, Fill());
    if (!more && pos_ == end_) return false;
  }
}

StatusOr<bool> LineReader::DiscardThroughNewline(uint64_t* skipped) {
  while (true) {
    const char* nl = static_cast<const char*>(std::memchr(buf_.get() + pos_, '\n', end_ - pos_));
    if (nl != nullptr) {
      size_t n = static_cast<size_t>(nl - (buf_.get() + pos_)) + 1;
      *skipped += n;
      pos_ += n;
      scanned_ = pos_;
      return true;
    }
    *skipped += end_ - pos_;
    pos_ = end_ = scanned_ = 0;
    ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return false;
  }
}

StatusOr<bool> LineReader::SkipLine() {
  if (pos_ == end_) {
    ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return false;
  }
  uint64_t skipped = 0;
  ASSIGN_OR_RETURN(bool found, DiscardThroughNewline(&skipped));
  offset_ += skipped;
  ++lines_read_;
  return found;
}

}  // namespace ctrps::worker
