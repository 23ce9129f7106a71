#include "worker/data/partition_reader.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

namespace ctrps::worker {
namespace {

// Counts '\n' in the first `limit` bytes of `path`.
StatusOr<int64_t> CountNewlines(const std::string& path, uint64_t limit) {
  ASSIGN_OR_RETURN(auto source, OpenFileSource(path, 0));
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  int64_t count = 0;
  uint64_t left = limit;
  while (left > 0) {
    ASSIGN_OR_RETURN(size_t got, source->Read(buf.get(), std::min<uint64_t>(left, 1 << 20)));
    if (got == 0) break;
    count += std::count(buf.get(), buf.get() + got, '\n');
    left -= got;
  }
  return count;
}

}  // namespace

std::string ReadPosition::ToString() const {
  return "file " + std::to_string(file_index) + ", byte " + std::to_string(byte_offset) + ", line " +
         std::to_string(line_in_file) + ", " + std::to_string(lines_consumed) + " consumed";
}

Status PartitionReaderOptions::Validate() const {
  RETURN_IF_ERROR(partition.Validate());
  RETURN_IF_ERROR(line.Validate());
  if (gzip_restart_spacing_bytes < (uint64_t{64} << 10))
    return Status::InvalidArgument("gzip_restart_spacing_bytes must be at least 64 KiB");
  if (header_lines < 0 || header_lines > 1) {
    return Status::InvalidArgument("header_lines must be 0 or 1, got " + std::to_string(header_lines));
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<PartitionReader>> PartitionReader::Open(std::vector<InputFile> files,
                                                                 const PartitionReaderOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  std::vector<FileSlice> slices = PlanPartition(files, options.partition);
  return std::unique_ptr<PartitionReader>(new PartitionReader(std::move(files), std::move(slices), options));
}

PartitionReader::PartitionReader(std::vector<InputFile> files, std::vector<FileSlice> slices,
                                 const PartitionReaderOptions& options)
    : files_(std::move(files)), slices_(std::move(slices)), options_(options) {
  for (const FileSlice& s : slices_)
    if (s.gzip)
      gzip_indexes_[s.file_index] =
          std::make_shared<GzipRestartIndex>(options_.gzip_restart_spacing_bytes);
}

std::string PartitionReader::RestartPointBefore(const ReadPosition& position) const {
  auto it = gzip_indexes_.find(position.file_index);
  if (it == gzip_indexes_.end()) return "";
  std::optional<GzipRestartPoint> p = it->second->Before(position.byte_offset);
  return p ? EncodeGzipRestartPoint(*p) : "";
}

Status PartitionReader::OpenGzipAt(const FileSlice& slice, const std::string& restart,
                                   const ReadPosition& position) {
  const std::string& path = files_[slice.file_index].path;
  ASSIGN_OR_RETURN(GzipRestartPoint point, DecodeGzipRestartPoint(restart));
  if (point.uncompressed_offset > position.byte_offset ||
      point.compressed_offset > files_[slice.file_index].size_bytes)
    return Status::InvalidArgument("the restart point (uncompressed byte " +
                                   std::to_string(point.uncompressed_offset) +
                                   ") is not before the position");
  std::shared_ptr<GzipRestartIndex> index = gzip_indexes_.at(slice.file_index);
  index->Add(point);  // later positions in this stretch can use it too
  ASSIGN_OR_RETURN(auto source, OpenGzipSourceAt(path, point, index));
  // Skip to the line start; the byte before it must end a line.
  uint64_t left = position.byte_offset - point.uncompressed_offset;
  std::unique_ptr<char[]> scratch(new char[1 << 16]);
  char last = '\n';
  while (left > 0) {
    ASSIGN_OR_RETURN(size_t got, source->Read(scratch.get(), std::min<uint64_t>(left, 1 << 16)));
    if (got == 0) return Status::Corruption("the file ends before the position");
    last = scratch[got - 1];
    left -= got;
  }
  if (last != '\n' && position.byte_offset > 0)
    return Status::Corruption("uncompressed byte " + std::to_string(position.byte_offset) +
                              " is not the start of a line");
  reader_ = std::make_unique<LineReader>(std::move(source), position.byte_offset, options_.line,
                                         position.line_in_file);
  stream_start_ = position.byte_offset;
  newlines_before_stream_ = 0;  // lines_read() counts from the file start
  line_numbers_unknown_ = false;
  return Status::OK();
}

Status PartitionReader::OpenStream(const FileSlice& slice, uint64_t offset) {
  const std::string& path = files_[slice.file_index].path;
  std::unique_ptr<ByteSource> source;
  if (slice.gzip) {
    CHECK_EQ(offset, 0u);
    ASSIGN_OR_RETURN(auto file, OpenFileSource(path, 0));
    source = NewGzipDecoder(std::move(file), path, gzip_indexes_.at(slice.file_index));
  } else {
    ASSIGN_OR_RETURN(source, OpenFileSource(path, offset));
  }
  reader_ = std::make_unique<LineReader>(std::move(source), offset, options_.line);
  stream_start_ = offset;
  newlines_before_stream_ = offset == 0 ? 0 : -1;
  line_numbers_unknown_ = false;
  return Status::OK();
}

Status PartitionReader::OpenSliceStart() {
  const FileSlice& slice = slices_[slice_index_];
  slice_lines_ = 0;
  if (slice.gzip || slice.begin_offset == 0) return OpenStream(slice, 0);
  // The line that the previous range owns may run into ours: start one byte
  // early and skip through the first "\n", so a line starting exactly at
  // begin_offset is kept.
  RETURN_IF_ERROR(OpenStream(slice, slice.begin_offset - 1));
  ASSIGN_OR_RETURN(bool found, reader_->SkipLine());
  (void)found;  // no "\n": the rest of the file belongs to the previous range
  return Status::OK();
}

void PartitionReader::Advance() {
  reader_.reset();
  ++slice_index_;
  slice_lines_ = 0;
}

StatusOr<bool> PartitionReader::Next(InputLine* line) {
  if (!seek_error_.ok()) return seek_error_;
  while (slice_index_ < slices_.size()) {
    const FileSlice& slice = slices_[slice_index_];
    if (reader_ == nullptr) {
      RETURN_IF_ERROR(OpenSliceStart());
    }
    if (!slice.gzip && reader_->offset() >= slice.end_offset) {
      Advance();
      continue;
    }
    Line raw;
    const uint64_t stream_line = reader_->lines_read();
    StatusOr<bool> got = reader_->Next(&raw);
    if (!got.ok()) return got.status().WithContext("reading " + files_[slice.file_index].path);
    if (!*got) {
      Advance();
      continue;
    }
    const uint64_t index = slice_lines_++;
    const bool header = index < static_cast<uint64_t>(options_.header_lines) &&
                        (slice.gzip || slice.begin_offset == 0);
    if (!header && index % slice.line_modulo != slice.line_remainder) continue;
    ++lines_consumed_;
    line->text = raw.text;
    line->too_long = raw.too_long;
    line->is_header = header;
    line->file_index = slice.file_index;
    line->byte_offset = raw.offset;
    line->size_bytes = raw.size_bytes;
    line->stream_line = stream_line;
    return true;
  }
  return false;
}

ReadPosition PartitionReader::Position() const {
  ReadPosition pos;
  pos.lines_consumed = lines_consumed_;
  if (slice_index_ >= slices_.size()) {
    pos.file_index = static_cast<int>(files_.size());
    return pos;
  }
  const FileSlice& slice = slices_[slice_index_];
  pos.file_index = slice.file_index;
  if (reader_ == nullptr) {
    pos.byte_offset = slice.begin_offset;
    return pos;
  }
  pos.byte_offset = reader_->offset();
  pos.line_in_file = slice_lines_;
  return pos;
}

ReadPosition PartitionReader::StartPosition() const {
  ReadPosition pos;
  if (slices_.empty()) {
    pos.file_index = static_cast<int>(files_.size());
  } else {
    pos.file_index = slices_[0].file_index;
    pos.byte_offset = slices_[0].begin_offset;
  }
  return pos;
}

Status PartitionReader::Seek(const ReadPosition& position) {
  seek_error_ = SeekTo(position);
  if (!seek_error_.ok()) reader_.reset();
  return seek_error_;
}

Status PartitionReader::SeekTo(const ReadPosition& position) {
  reader_.reset();
  lines_consumed_ = position.lines_consumed;
  slice_lines_ = 0;
  if (position.file_index == static_cast<int>(files_.size())) {
    slice_index_ = slices_.size();
    return Status::OK();
  }
  auto it = std::find_if(slices_.begin(), slices_.end(),
                         [&](const FileSlice& s) { return s.file_index == position.file_index; });
  if (it == slices_.end()) {
    slice_index_ = slices_.size();
    return Status::InvalidArgument("cannot seek to " + position.ToString() + ": file " +
                                   std::to_string(position.file_index) + " is not part of reader " +
                                   std::to_string(options_.partition.reader_index) + " of " +
                                   std::to_string(options_.partition.num_readers));
  }
  slice_index_ = static_cast<size_t>(it - slices_.begin());
  const FileSlice& slice = *it;
  const InputFile& file = files_[slice.file_index];
  const bool slice_start = position.line_in_file == 0 && position.byte_offset == slice.begin_offset;
  if (slice_start) return Status::OK();  // opened by the next Next, skipping the partial line

  if (slice.gzip) {
    // From a restart point when the position has one (a checkpoint taken
    // in a process that had decompressed that far): at most its spacing to
    // skip, not the file up to here. A bad one falls back to the start.
    if (!position.gzip_restart.empty()) {
      Status fast = OpenGzipAt(slice, position.gzip_restart, position);
      if (fast.ok()) {
        spdlog::info("{}: resumed at uncompressed byte {} from a restart point, not from the "
                     "file's start", file.path, position.byte_offset);
        slice_lines_ = position.line_in_file;
        return Status::OK();
      }
      reader_.reset();
      spdlog::warn("the saved restart point of {} could not be used ({}); decompressing it "
                   "from its start to the position", file.path, fast.message());
    }
    RETURN_IF_ERROR(OpenStream(slice, 0));
    while (reader_->lines_read() < position.line_in_file) {
      StatusOr<bool> more = reader_->SkipLine();
      if (!more.ok()) return more.status().WithContext("seeking in " + file.path);
      if (!*more) break;
    }
    if (reader_->lines_read() != position.line_in_file || reader_->offset() != position.byte_offset) {
      return Status::Corruption("cannot seek to " + position.ToString() + " in " + file.path +
                                ": line " + std::to_string(position.line_in_file) + " is at uncompressed byte " +
                                std::to_string(reader_->offset()) + " (was the file changed?)");
    }
    slice_lines_ = position.line_in_file;
    return Status::OK();
  }
  if (position.byte_offset < slice.begin_offset || position.byte_offset > file.size_bytes) {
    return Status::InvalidArgument("cannot seek to " + position.ToString() + " in " + file.path +
                                   ": byte offset outside this reader's range, which starts at " +
                                   std::to_string(slice.begin_offset) + " in a file of " +
                                   std::to_string(file.size_bytes) + " bytes");
  }
  // Re-read the byte before the offset: a line starts there only if that
  // byte ends the previous line (or the offset is the start or the end of
  // the file).
  const uint64_t open_at = position.byte_offset == 0 ? 0 : position.byte_offset - 1;
  RETURN_IF_ERROR(OpenStream(slice, open_at));
  if (position.byte_offset > 0) {
    StatusOr<bool> skipped = reader_->SkipLine();
    if (!skipped.ok()) return skipped.status().WithContext("seeking in " + file.path);
  }
  if (reader_->offset() != position.byte_offset) {
    return Status::InvalidArgument("cannot seek to " + position.ToString() + " in " + file.path +
                                   ": byte " + std::to_string(position.byte_offset) +
                                   " is not the start of a line (was the file changed?)");
  }
  slice_lines_ = position.line_in_file;
  return Status::OK();
}

std::string PartitionReader::Location(const InputLine& line) {
  const std::string& path = files_[line.file_index].path;
  const bool current = slice_index_ < slices_.size() && slices_[slice_index_].file_index == line.file_index;
  if (current && newlines_before_stream_ < 0 && !line_numbers_unknown_) {
    line_numbers_unknown_ = true;
    if (stream_start_ <= options_.max_line_number_scan_bytes) {
      StatusOr<int64_t> count = CountNewlines(path, stream_start_);
      if (count.ok()) {
        newlines_before_stream_ = *count;
        line_numbers_unknown_ = false;
      }
    }
  }
  if (!current || newlines_before_stream_ < 0) {
    return path + ":byte " + std::to_string(line.byte_offset);
  }
  return path + ":" + std::to_string(newlines_before_stream_ + static_cast<int64_t>(line.stream_line) + 1);
}

}  // namespace ctrps::worker
