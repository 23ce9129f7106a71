// Restart points of a gzip file: places where decompression can start
// without inflating what comes before (zlib's zran technique). At the end
// of a deflate block, the state is the compressed byte (and bit) where the
// next block starts plus the last 32 KiB of uncompressed data it may refer
// back to; at the start of a gzip member, just the byte. The decoder
// records one every `spacing` uncompressed bytes as it reads
// (GzipRestartIndex); a checkpoint saves the last one before its reader
// position, and a resume starts there (OpenGzipSourceAt) and skips at most
// `spacing` bytes, instead of decompressing the file from its start.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ctrps::worker {

struct GzipRestartPoint {
  uint64_t compressed_offset = 0;    // file byte where inflation resumes
  int bits = 0;                      // 0..7 bits of the byte before it that the next block uses
  uint64_t uncompressed_offset = 0;  // in the whole file's uncompressed stream (all members)
  bool member_start = false;         // a gzip member (header) starts at compressed_offset
  // Mid-member points: the member's crc32 and length so far (its trailer
  // is checked after a resume too), and the window (at most 32 KiB).
  uint32_t member_crc = 0;
  uint64_t member_bytes = 0;
  std::string window;
};

// A few hundred bytes plus the window; persisted inside reader positions:
// never change the meaning of version 1.
std::string EncodeGzipRestartPoint(const GzipRestartPoint& p);
// Untrusted bytes (a checkpoint): Corruption unless a well-formed version 1
// point (window at most 32 KiB, bits in 0..7).
StatusOr<GzipRestartPoint> DecodeGzipRestartPoint(const std::string& bytes);

// The restart points of one gzip file, in increasing uncompressed offset.
// Filled by the decoder thread, read by the thread saving a checkpoint:
// thread-safe.
class GzipRestartIndex {
 public:
  // A point every `spacing_bytes` of uncompressed data (at the first block
  // end past it); a resume skips at most about that much.
  explicit GzipRestartIndex(uint64_t spacing_bytes = uint64_t{32} << 20)
      : spacing_(spacing_bytes) {}
  uint64_t spacing() const { return spacing_; }
  // Ignored unless past the last point (a re-read adds nothing new).
  void Add(GzipRestartPoint p);
  // The last point at or before `uncompressed_offset`, if any.
  std::optional<GzipRestartPoint> Before(uint64_t uncompressed_offset) const;
  size_t size() const;

 private:
  const uint64_t spacing_;
  mutable std::mutex mu_;
  std::vector<GzipRestartPoint> points_;
};

}  // namespace ctrps::worker
