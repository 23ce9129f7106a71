// Turning an input spec ("train.txt", "a.txt,b.txt.gz", "day_*.gz") into
// the sorted list of files every reader of a job agrees on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ctrps::worker {

struct InputFile {
  std::string path;
  uint64_t size_bytes = 0;  // on-disk size (the compressed size for gzip)
  bool gzip = false;        // starts with the gzip magic bytes 1f 8b (the name does not matter)
};

// Resolves `spec`: one path, or a comma-separated list of paths, each of
// which may be a glob(3) pattern (*, ?, [...]). Whitespace around list
// elements is ignored; file names containing commas are not supported.
// The result is sorted by path (byte order) with duplicates removed, so
// every reader of a job sees the same files in the same order.
// Errors: InvalidArgument for an empty spec or a directory; NotFound for a
// missing file or a pattern that matches nothing; IOError if a file cannot
// be examined.
StatusOr<std::vector<InputFile>> ResolveInputFiles(std::string_view spec);

}  // namespace ctrps::worker
