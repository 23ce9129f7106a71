// Reads the lines of one reader's partition (see partition.h), with a
// resumable position for checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "worker/data/gzip_restart.h"
#include "worker/data/input_files.h"
#include "worker/data/line_reader.h"
#include "worker/data/partition.h"

namespace ctrps::worker {

// Where a reader is: enough to continue from the same line later, in
// another process, as long as the files are unchanged. Save all four fields.
struct ReadPosition {
  // File-list index of the file holding the next line; the number of files
  // once the partition is exhausted.
  int file_index = 0;
  // Plain files: file offset where the next line starts (a Seek target).
  // Gzip files: offset of the next line in the uncompressed stream (checked
  // on Seek, to detect a changed file).
  uint64_t byte_offset = 0;
  // Lines of this file passed so far: since the reader's slice start for
  // plain files, since the file start for gzip files (a Seek into a gzip
  // file decompresses and skips this many lines).
  uint64_t line_in_file = 0;
  // Lines this reader has returned since the start of its partition.
  uint64_t lines_consumed = 0;
  // Gzip files: optionally, a restart point of the file at or before
  // byte_offset (EncodeGzipRestartPoint; from RestartPointBefore), so Seek
  // decompresses from there instead of from the file's start. Not part of
  // the position's identity (==); a bad one falls back to the slow way.
  std::string gzip_restart;

  bool operator==(const ReadPosition& o) const {
    return file_index == o.file_index && byte_offset == o.byte_offset &&
           line_in_file == o.line_in_file && lines_consumed == o.lines_consumed;
  }
  bool operator!=(const ReadPosition& o) const { return !(*this == o); }
  std::string ToString() const;  // "file 2, byte 1234, line 17, 40 consumed"
};

struct InputLine {
  std::string_view text;     // see Line::text; valid until the next Next/Seek
  bool too_long = false;     // see Line::too_long
  bool is_header = false;    // one of the first header_lines lines of its file
  int file_index = 0;
  uint64_t byte_offset = 0;  // where the line starts (uncompressed offset for gzip)
  uint64_t size_bytes = 0;   // terminator included
  uint64_t stream_line = 0;  // internal: line count of the underlying stream, for Location()
};

struct PartitionReaderOptions {
  PartitionOptions partition;
  LineReaderOptions line;
  // Lines at the start of every file that are a header (0 or 1), returned
  // with is_header set.
  int header_lines = 0;
  // Messages name "file:line". A reader that starts in the middle of a
  // plain file learns its line numbers by counting the newlines before its
  // start, once, and only when a message needs one; past this many bytes it
  // names "file:byte OFFSET" instead.
  uint64_t max_line_number_scan_bytes = uint64_t{1} << 30;
  // Gzip files: a restart point every this many uncompressed bytes (a
  // 32 KiB window each, kept for the file while it is read; a resume skips
  // at most this much). 20 GB at 32 MiB: 640 points, 20 MiB of windows.
  uint64_t gzip_restart_spacing_bytes = uint64_t{32} << 20;

  Status Validate() const;
};

// Not thread-safe.
class PartitionReader {
 public:
  // `files` as from ResolveInputFiles. Does no I/O until the first Next.
  static StatusOr<std::unique_ptr<PartitionReader>> Open(std::vector<InputFile> files,
                                                         const PartitionReaderOptions& options);

  // The next line of the partition; false when it is exhausted. Errors:
  // IOError/Corruption from the files, with the path in the message.
  [[nodiscard]] StatusOr<bool> Next(InputLine* line);

  // Position of the next line Next would return.
  ReadPosition Position() const;
  // Position of the partition's first line (what an epoch rewinds to).
  ReadPosition StartPosition() const;
  // Continues from `position`, which must come from Position() of a reader
  // with the same files and partition options. InvalidArgument if it names
  // a file outside this partition or an offset outside this reader's range
  // or not at a line start; Corruption if a gzip file no longer matches.
  // After a failed Seek, Next returns the same error until a Seek succeeds.
  [[nodiscard]] Status Seek(const ReadPosition& position);

  // Gzip files: the encoded restart point (gzip_restart.h) of the file at
  // or before `position` (a Position() of this reader), or "" if there is
  // none (a plain file, or not decompressed that far in this process).
  // Thread-safe: it may be called while another thread reads.
  std::string RestartPointBefore(const ReadPosition& position) const;

  // "path:LINE" (1-based) for the line Next just returned, or
  // "path:byte OFFSET" when its line number is not cheaply known.
  std::string Location(const InputLine& line);

  const std::vector<InputFile>& files() const { return files_; }
  const std::vector<FileSlice>& slices() const { return slices_; }

 private:
  PartitionReader(std::vector<InputFile> files, std::vector<FileSlice> slices,
                  const PartitionReaderOptions& options);
  Status SeekTo(const ReadPosition& position);
  Status OpenSliceStart();
  Status OpenStream(const FileSlice& slice, uint64_t offset);
  // Opens a gzip slice at `restart` and skips to `position` (a line start);
  // an error leaves the reader closed (the caller falls back).
  Status OpenGzipAt(const FileSlice& slice, const std::string& restart,
                    const ReadPosition& position);
  void Advance();

  std::vector<InputFile> files_;
  std::vector<FileSlice> slices_;
  PartitionReaderOptions options_;
  size_t slice_index_ = 0;              // == slices_.size() at the end
  std::unique_ptr<LineReader> reader_;  // null until the current slice is opened
  uint64_t slice_lines_ = 0;            // ReadPosition::line_in_file
  uint64_t lines_consumed_ = 0;
  uint64_t stream_start_ = 0;           // file offset where reader_ began
  int64_t newlines_before_stream_ = -1; // '\n' in [0, stream_start_), -1 = not counted yet
  bool line_numbers_unknown_ = false;   // counting was too costly or failed
  Status seek_error_;                   // sticky until a Seek succeeds
  // Restart points of each gzip file read (by file index), made up front:
  // the map itself never changes after construction.
  std::map<int, std::shared_ptr<GzipRestartIndex>> gzip_indexes_;
};

}  // namespace ctrps::worker
