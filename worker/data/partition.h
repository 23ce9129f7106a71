// Which part of the input each of N readers reads, so that over all readers
// every line is read exactly once. A pure function of the file list (paths,
// sizes, gzip flags) and (reader_index, num_readers): every worker computes
// the same plan without talking to the others.
//
// Plain files are split by bytes: the plain files are laid end to end and
// cut into N equal byte ranges; reader i owns every line that STARTS in
// range i (the Hadoop rule), reading past the range end to finish its last
// line and skipping the partial line at its range start. A file boundary
// always ends a line, even without a trailing "\n".
//
// Gzip files cannot be entered in the middle, so they are dealt whole or by
// lines (GzipSplit below); each gzip file is also read after the plain files
// before it and before those after it, in file-list order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/data/input_files.h"

namespace ctrps::worker {

enum class GzipSplit {
  // Each gzip file is read whole by one reader, dealt by compressed size:
  // largest first, each to the reader with the fewest gzip bytes so far
  // (ties: the lower reader; equal sizes: file-list order, so files of one
  // size go round-robin). Each gzip file is decompressed once in the whole
  // job; balance needs at least N gzip files (a file larger than the rest
  // together still leaves the others less to read).
  kWholeFilesBySize,
  // Every reader decompresses every gzip file and keeps line l of the k-th
  // gzip file when (l + k) mod N == i (l counted from 0, header included).
  // Balanced to one line, but costs N decompressions: for few, large files.
  // Header lines are given to every reader (to check), never counted as rows.
  kLineModulo,
};

struct PartitionOptions {
  int reader_index = 0;  // this reader, in [0, num_readers)
  int num_readers = 1;   // readers sharing the input (e.g. one per worker rank)
  GzipSplit gzip_split = GzipSplit::kWholeFilesBySize;

  // InvalidArgument unless 1 <= num_readers <= 1<<20 and 0 <= reader_index < num_readers.
  Status Validate() const;
};

// What one reader reads of one file.
struct FileSlice {
  int file_index = 0;  // into the file list
  bool gzip = false;
  // Plain files: own the lines starting in [begin_offset, end_offset).
  // Gzip files: 0 and the compressed size (the whole file).
  uint64_t begin_offset = 0;
  uint64_t end_offset = 0;
  // Gzip files: keep line l when l % line_modulo == line_remainder.
  // 1 and 0 (every line) except under kLineModulo.
  uint64_t line_modulo = 1;
  uint64_t line_remainder = 0;
};

// This reader's slices in file-list order, at most one per file. Empty
// files and files with nothing for this reader are left out.
std::vector<FileSlice> PlanPartition(const std::vector<InputFile>& files,
                                     const PartitionOptions& options);

}  // namespace ctrps::worker
