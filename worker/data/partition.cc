#include "worker/data/partition.h"

#include <algorithm>

namespace ctrps::worker {
namespace {

// floor(total * i / n) without overflow.
uint64_t RangeBoundary(uint64_t total, int i, int n) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(total) * static_cast<unsigned>(i) /
                               static_cast<unsigned>(n));
}

// The reader of each gzip file (by file index; -1 for plain files) when
// they are dealt whole by size: largest first (file-list order among equal
// sizes), each to the reader with the fewest compressed bytes so far (the
// lowest index among equals). Files of one size are dealt round-robin in
// list order, as before; uneven ones no longer leave a reader idle while
// another reads most of the bytes.
std::vector<int> DealGzipBySize(const std::vector<InputFile>& files, int n) {
  std::vector<size_t> order;
  for (size_t i = 0; i < files.size(); ++i)
    if (files[i].gzip && files[i].size_bytes > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return files[a].size_bytes > files[b].size_bytes;
  });
  std::vector<int> owner(files.size(), -1);
  // A reader count far above the file count only ever uses the first ones.
  const size_t used = std::min<size_t>(static_cast<size_t>(n), order.size());
  std::vector<uint64_t> load(used, 0);
  for (size_t f : order) {
    const size_t r = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += files[f].size_bytes;
    owner[f] = static_cast<int>(r);
  }
  return owner;
}

}  // namespace

Status PartitionOptions::Validate() const {
  if (num_readers < 1 || num_readers > (1 << 20)) {
    return Status::InvalidArgument("num_readers must be in [1, 1048576], got " + std::to_string(num_readers));
  }
  if (reader_index < 0 || reader_index >= num_readers) {
    return Status::InvalidArgument("reader_index must be in [0, num_readers = " + std::to_string(num_readers) +
                                   "), got " + std::to_string(reader_index));
  }
  return Status::OK();
}

std::vector<FileSlice> PlanPartition(const std::vector<InputFile>& files,
                                     const PartitionOptions& options) {
  CHECK(options.Validate().ok()) << options.Validate().ToString();
  const int n = options.num_readers;
  const int i = options.reader_index;
  uint64_t plain_total = 0;
  for (const InputFile& f : files) {
    if (!f.gzip) plain_total += f.size_bytes;
  }
  const uint64_t range_begin = RangeBoundary(plain_total, i, n);
  const uint64_t range_end = RangeBoundary(plain_total, i + 1, n);

  std::vector<FileSlice> slices;
  uint64_t plain_start = 0;  // global offset of the current plain file
  uint64_t gzip_ordinal = 0;
  const std::vector<int> gzip_owner = options.gzip_split == GzipSplit::kWholeFilesBySize
                                          ? DealGzipBySize(files, n)
                                          : std::vector<int>();
  for (size_t index = 0; index < files.size(); ++index) {
    const InputFile& f = files[index];
    FileSlice slice;
    slice.file_index = static_cast<int>(index);
    slice.gzip = f.gzip;
    if (!f.gzip) {
      uint64_t file_end = plain_start + f.size_bytes;
      uint64_t begin = std::max(range_begin, plain_start);
      uint64_t end = std::min(range_end, file_end);
      plain_start = file_end;
      if (begin >= end) continue;
      slice.begin_offset = begin - (file_end - f.size_bytes);
      slice.end_offset = end - (file_end - f.size_bytes);
      slices.push_back(slice);
      continue;
    }
    const uint64_t k = gzip_ordinal++;
    if (f.size_bytes == 0) continue;
    slice.begin_offset = 0;
    slice.end_offset = f.size_bytes;
    if (options.gzip_split == GzipSplit::kWholeFilesBySize) {
      if (gzip_owner[index] != i) continue;
    } else {
      slice.line_modulo = static_cast<uint64_t>(n);
      // (l + k) mod n == i  <=>  l mod n == (i - k) mod n.
      slice.line_remainder = (static_cast<uint64_t>(i) + static_cast<uint64_t>(n) - k % n) % n;
    }
    slices.push_back(slice);
  }
  return slices;
}

}  // namespace ctrps::worker
