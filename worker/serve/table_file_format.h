// The byte layout of bundle table files (documented in bundle.proto), shared
// by their writer (table_file_write.cc) and reader (table_file.cc). Internal
// to worker/serve.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/serve/bundle.h"
#include "worker/serve/key_index.h"

namespace ctrps::worker::serve::table_format {

constexpr char kMagic[8] = {'C', 'T', 'R', 'P', 'S', 'E', 'M', 'B'};
// Format versions by row layout and key encoding (bundle.proto).
constexpr uint32_t kVersion = 1;              // dense rows, 8-byte keys
constexpr uint32_t kSparseVersion = 2;        // sparse rows, 8-byte keys
constexpr uint32_t kPackedVersion = 3;        // dense rows, packed keys
constexpr uint32_t kSparsePackedVersion = 4;  // sparse rows, packed keys
constexpr int kRowsPerBlock = 16;        // sparse rows: one block record per 16 rows
constexpr size_t kHeaderBytes = 64;

struct Header {
  uint32_t version = kVersion;
  uint32_t dtype = 0;
  uint32_t width = 0;
  uint32_t table_id = 0;
  uint64_t rows = 0;
  uint32_t crc = 0;
  uint32_t mask_bytes = 0;  // version 2
  uint64_t nnz = 0;         // version 2
  uint32_t key_bucket_bits = 0;  // packed keys (versions 3 and 4)
};

inline uint32_t FileVersion(TableEntry::Layout layout, KeyEncoding keys) {
  const bool sparse = layout == TableEntry::Layout::kSparseRows;
  if (keys == KeyEncoding::kPacked) return sparse ? kSparsePackedVersion : kPackedVersion;
  return sparse ? kSparseVersion : kVersion;
}
inline bool SparseVersion(uint32_t v) { return v == kSparseVersion || v == kSparsePackedVersion; }
inline bool PackedVersion(uint32_t v) { return v == kPackedVersion || v == kSparsePackedVersion; }

inline uint32_t MaskBytes(int width) { return width <= 8 ? 1 : width <= 16 ? 2 : width <= 32 ? 4 : 8; }
inline uint64_t Blocks(uint64_t rows) { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }
// A block record: the value index of its first row, then its 16 rows' masks.
inline uint64_t RecordBytes(int width) { return 8 + kRowsPerBlock * uint64_t{MaskBytes(width)}; }

inline size_t ElementBytes(TableDtype t) {
  switch (t) {
    case TableDtype::kFloat32:
      return 4;
    case TableDtype::kFloat16:
      return 2;
    case TableDtype::kInt8:
      return 1;
  }
  return 4;
}

// Bytes after the header: keys, scales (int8), values.
inline uint64_t BodyBytes(KeyEncoding k, TableDtype t, uint64_t rows, int width) {
  return KeySectionBytes(k, rows) + (t == TableDtype::kInt8 ? rows * 4 : 0) +
         rows * width * ElementBytes(t);
}

// Sparse rows: keys, block records, values.
inline uint64_t SparseBodyBytes(KeyEncoding k, TableDtype t, uint64_t rows, int width, uint64_t nnz) {
  return KeySectionBytes(k, rows) + Blocks(rows) * RecordBytes(width) + nnz * ElementBytes(t);
}

inline uint32_t Crc(uint32_t crc, const char* p, uint64_t n) {
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(p), chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}


}  // namespace ctrps::worker::serve::table_format
