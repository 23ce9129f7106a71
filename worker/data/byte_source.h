// Sequential byte streams the line reader pulls from: a file (optionally
// starting at an offset), a gzip decoder over another source, and in-memory
// twins for tests (a string, a fault-injecting wrapper).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace ctrps::worker {

struct GzipRestartPoint;
class GzipRestartIndex;

// A forward-only stream of bytes. Not thread-safe; one reader at a time.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` (> 0) bytes into `buf`. Returns how many were read; 0
  // only at the end of the stream. Errors: IOError for read failures,
  // Corruption for bad compressed data. After an error the source is dead.
  [[nodiscard]] virtual StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

// Opens `path` for reading from byte `offset` (<= file size). Reads go
// straight to read(2) into the caller's buffer, which should be large
// (the line reader uses 1 MiB), and the kernel is told access is sequential.
StatusOr<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path,
                                                     uint64_t offset = 0);

// Decompresses a gzip stream: one member or several concatenated (as
// `cat a.gz b.gz` makes). `name` is used in error messages. A stream that
// ends inside a member is Corruption ("truncated"), as is anything after the
// last member that is not another gzip member.
// With `index`, records restart points in it as it goes (gzip_restart.h).
std::unique_ptr<ByteSource> NewGzipDecoder(std::unique_ptr<ByteSource> compressed,
                                           std::string name,
                                           std::shared_ptr<GzipRestartIndex> index = nullptr);

// Decompresses the gzip file at `path` from `point` on (a restart point of
// that file): the stream's first byte is the one at point.uncompressed_offset.
// A point that does not belong to the file shows as Corruption, at once or
// at the member's trailer check.
StatusOr<std::unique_ptr<ByteSource>> OpenGzipSourceAt(const std::string& path,
                                                       const GzipRestartPoint& point,
                                                       std::shared_ptr<GzipRestartIndex> index = nullptr);

// OpenFileSource(path) wrapped in NewGzipDecoder.
StatusOr<std::unique_ptr<ByteSource>> OpenGzipSource(const std::string& path);

// True if the file starts with the gzip magic bytes 1f 8b. Files shorter
// than two bytes are not gzip.
StatusOr<bool> IsGzipFile(const std::string& path);

// In-memory twin: yields `data`, at most `max_read_bytes` per Read (to
// exercise short reads).
std::unique_ptr<ByteSource> NewStringSource(std::string data, size_t max_read_bytes = SIZE_MAX);

// Fault injection: passes `base` through until `fail_after_bytes` bytes have
// been delivered, then returns `error` from every Read.
std::unique_ptr<ByteSource> NewFailingSource(std::unique_ptr<ByteSource> base,
                                             uint64_t fail_after_bytes, Status error);

}  // namespace ctrps::worker
