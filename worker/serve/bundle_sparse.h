// model.pb's sparse parts (bundle format 3, pruned models): written into and
// read out of the protobuf. Internal to worker/serve (bundle.cc).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/serve/bundle.h"
#include "worker/serve/bundle.pb.h"

namespace ctrps::worker::serve {

// zlib crc32 of bytes (model.pb's per-tensor checksums).
inline uint32_t Crc32(const std::string& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, size_t{1} << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

// The dense tensors the sparse parts stand for.
std::vector<std::string> CoveredTensors(const SparseParts& sp);
// Fills p from sp (the values and their checksums only when with_values).
void SparsePartsToProto(const SparseParts& sp, bool with_values,
                        ::ctrps::serve::proto::SparseParts* p);

// Validates and expands model.pb's sparse parts: every count is checked
// against the caps and the byte sizes before anything is allocated, then
// the structure (row starts, ascending columns, pairs), then the checksum.
// The covered dense tensors are appended to m->dense (zeros elsewhere).
[[nodiscard]] Status ReadSparseParts(const ::ctrps::serve::proto::SparseParts& sp,
                                     BundleManifest* m);

}  // namespace ctrps::worker::serve
