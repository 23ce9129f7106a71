// Lines of a partition -> parsed examples, with the malformed-line policy:
// lenient (skip, count by reason, log the first few) or strict (stop).
#pragma once

#include <memory>

#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/data/line_parser.h"
#include "worker/data/partition_reader.h"
#include "worker/data/read_stats.h"

namespace ctrps::worker {

struct MalformedOptions {
  // false (lenient, the default): a malformed line is skipped, counted in
  // ReadStats by reason, and the first max_logged_lines of them are logged
  // as "skipping malformed line (reason) file:line: column: detail". true:
  // the first malformed line stops reading with InvalidArgument
  // "file:line: column: what was expected, got what". In both modes an
  // empty line is skipped and counted (kEmptyLine), never fatal, and a bad
  // header is always an error (the files are probably not this format).
  bool strict = false;
  // Strict mode: an empty line stops reading too (for `predict`, whose
  // output line N must be the score of input line N).
  bool empty_lines_fatal = false;
  // Lenient mode: how many malformed lines each reader logs (warn level);
  // later ones are only counted. 0 logs none.
  int max_logged_lines = 10;

  Status Validate() const;
};

// Not thread-safe.
class RowReader {
 public:
  RowReader(std::unique_ptr<PartitionReader> lines, std::unique_ptr<LineParser> parser,
            const MalformedOptions& options);

  // Appends up to `max_rows` (> 0) examples to *batch, whose num_fields must
  // be schema().num_fields(). Returns how many were appended: fewer than
  // max_rows only at the end of the partition. On error *batch holds the
  // rows appended before it.
  [[nodiscard]] StatusOr<int> ReadRows(int max_rows, Batch* batch);

  // Position of the next line (see PartitionReader); Seek to continue from
  // one. Seek does not reset stats().
  ReadPosition Position() const { return lines_->Position(); }
  ReadPosition StartPosition() const { return lines_->StartPosition(); }
  [[nodiscard]] Status Seek(const ReadPosition& position) { return lines_->Seek(position); }

  const ReadStats& stats() const { return stats_; }
  const DatasetSchema& schema() const { return parser_->schema(); }
  PartitionReader* partition_reader() { return lines_.get(); }
  const PartitionReader* partition_reader() const { return lines_.get(); }

 private:
  // Counts the line; in strict mode returns the error to stop with.
  Status Malformed(const InputLine& line, const ParseError& error);

  std::unique_ptr<PartitionReader> lines_;
  std::unique_ptr<LineParser> parser_;
  MalformedOptions options_;
  ReadStats stats_;
  int64_t logged_ = 0;
  ParseError error_;  // reused, so good lines allocate nothing
};

}  // namespace ctrps::worker
