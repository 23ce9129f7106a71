#include "worker/data/row_reader.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "worker/data/text_util.h"

namespace ctrps::worker {

Status MalformedOptions::Validate() const {
  if (max_logged_lines < 0) {
    return Status::InvalidArgument("max_logged_lines must be >= 0, got " + std::to_string(max_logged_lines));
  }
  return Status::OK();
}

RowReader::RowReader(std::unique_ptr<PartitionReader> lines, std::unique_ptr<LineParser> parser,
                     const MalformedOptions& options)
    : lines_(std::move(lines)), parser_(std::move(parser)), options_(options) {
  CHECK(lines_ != nullptr && parser_ != nullptr);
  CHECK(options.Validate().ok()) << options.Validate().ToString();
}

Status RowReader::Malformed(const InputLine& line, const ParseError& error) {
  ++stats_.malformed[static_cast<int>(error.reason)];
  const bool fatal = options_.strict && (error.reason != MalformedReason::kEmptyLine ||
                                         options_.empty_lines_fatal);
  if (!fatal && logged_ >= options_.max_logged_lines) return Status::OK();
  std::string message = lines_->Location(line) + ": ";
  if (error.column >= 0) message += parser_->ColumnName(error.column) + ": ";
  message += error.detail;
  if (fatal) return Status::InvalidArgument(message);
  ++logged_;
  spdlog::warn("skipping malformed line ({}) {}", MalformedReasonName(error.reason), message);
  if (logged_ == options_.max_logged_lines) {
    spdlog::warn("further malformed lines are counted but not logged (limit {}: data.log_bad_lines)",
                 options_.max_logged_lines);
  }
  return Status::OK();
}

StatusOr<int> RowReader::ReadRows(int max_rows, Batch* batch) {
  const int num_fields = parser_->num_fields();
  CHECK_GT(max_rows, 0);
  CHECK_EQ(batch->num_fields, num_fields);
  const size_t first = batch->labels.size();
  batch->labels.resize(first + max_rows);
  batch->keys.resize((first + max_rows) * num_fields);
  batch->values.resize((first + max_rows) * num_fields);
  int rows = 0;
  auto finish = [&] {
    batch->labels.resize(first + rows);
    batch->keys.resize((first + rows) * num_fields);
    batch->values.resize((first + rows) * num_fields);
  };
  InputLine line;
  while (rows < max_rows) {
    StatusOr<bool> more = lines_->Next(&line);
    if (!more.ok()) {
      finish();
      return more.status();
    }
    if (!*more) break;
    ++stats_.lines;
    stats_.bytes += static_cast<int64_t>(line.size_bytes);
    if (line.is_header) {
      ++stats_.header_lines;
      Status st = line.too_long ? Status::InvalidArgument("header line of " + std::to_string(line.size_bytes) +
                                                          " bytes is longer than max_line_bytes")
                                : parser_->CheckHeader(line.text);
      if (!st.ok()) {
        finish();
        return st.WithContext(lines_->Location(line));
      }
      continue;
    }
    Status bad;
    if (line.too_long) {
      error_.reason = MalformedReason::kLineTooLong;
      error_.column = -1;
      error_.detail = "line of " + std::to_string(line.size_bytes) + " bytes is longer than max_line_bytes; it starts " +
                      QuoteForMessage(line.text, 32);
      bad = Malformed(line, error_);
    } else if (line.text.empty()) {
      error_.reason = MalformedReason::kEmptyLine;
      error_.column = -1;
      error_.detail = "empty line";
      bad = Malformed(line, error_);
    } else {
      size_t offset;
      if (!CheckLineBytes(line.text, &error_.reason, &offset)) {
        error_.column = -1;
        error_.detail = std::string(error_.reason == MalformedReason::kNulByte ? "NUL byte" : "invalid UTF-8") +
                        " at byte " + std::to_string(offset) + " of the line";
        bad = Malformed(line, error_);
      } else {
        const size_t row = first + rows;
        if (parser_->Parse(line.text, &batch->labels[row], &batch->keys[row * num_fields],
                           &batch->values[row * num_fields], &error_)) {
          ++rows;
          ++stats_.rows;
          continue;
        }
        bad = Malformed(line, error_);
      }
    }
    if (!bad.ok()) {
      finish();
      return bad;
    }
  }
  finish();
  return rows;
}

}  // namespace ctrps::worker
