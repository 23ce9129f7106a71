#include "worker/serve/table_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "worker/serve/table_file_format.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace ctrps::worker::serve {

using namespace table_format;  // NOLINT: this file is the format's reader
static_assert(kRowsPerBlock == 16, "table_file.h's inline readers assume 16-row blocks");

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {  // subnormal: normalise
      e = 127 - 15 + 1;
      while (!(m & 0x400u)) {
        m <<= 1;
        --e;
      }
      x = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 127 - 15) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

MappedTable::~MappedTable() { Unmap(); }

void MappedTable::Unmap() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

MappedTable::MappedTable(MappedTable&& o) noexcept { *this = std::move(o); }

MappedTable& MappedTable::operator=(MappedTable&& o) noexcept {
  if (this != &o) {
    Unmap();
    map_ = o.map_;
    map_bytes_ = o.map_bytes_;
    width_ = o.width_;
    rows_ = o.rows_;
    dtype_ = o.dtype_;
    index_ = std::move(o.index_);
    inline_ = std::move(o.inline_);
    inline_at_ = std::move(o.inline_at_);
    scales_ = o.scales_;
    values_ = o.values_;
    masks_ = o.masks_;
    mask_bytes_ = o.mask_bytes_;
    record_bytes_ = o.record_bytes_;
    nnz_ = o.nnz_;
    padded_width_ = o.padded_width_;
    o.map_ = nullptr;
    o.map_bytes_ = 0;
  }
  return *this;
}

StatusOr<MappedTable> MappedTable::Open(const std::string& path, const TableEntry& expected) {
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::NotFound("cannot open table file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::IOError("cannot stat " + path + ": " + std::strerror(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeaderBytes) {
    ::close(fd);
    return bad(std::to_string(size) + " bytes, shorter than the 64-byte header (truncated)");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED)
    return Status::IOError("cannot mmap " + path + ": " + std::strerror(errno));
  MappedTable t;
  t.map_ = map;
  t.map_bytes_ = size;
  const char* p = static_cast<const char*>(map);
  if (std::memcmp(p, kMagic, 8) != 0) return bad("bad magic (not a ctrps table file)");
  Header h;
  std::memcpy(&h.version, p + 8, 4);
  std::memcpy(&h.dtype, p + 12, 4);
  std::memcpy(&h.width, p + 16, 4);
  std::memcpy(&h.table_id, p + 20, 4);
  std::memcpy(&h.rows, p + 24, 8);
  std::memcpy(&h.crc, p + 32, 4);
  const bool sparse = expected.layout == TableEntry::Layout::kSparseRows;
  const bool packed = expected.key_encoding == KeyEncoding::kPacked;
  const uint32_t want_version = FileVersion(expected.layout, expected.key_encoding);
  if (h.version != want_version)
    return bad("format version " + std::to_string(h.version) + ", expected " +
               std::to_string(want_version) + " (model.pb says " +
               (sparse ? "sparse" : "dense") + " rows, " + (packed ? "packed" : "8-byte") +
               " keys)");
  if (sparse) {
    std::memcpy(&h.mask_bytes, p + 36, 4);
    std::memcpy(&h.nnz, p + 40, 8);
  }
  if (packed) std::memcpy(&h.key_bucket_bits, p + 48, 4);
  for (size_t i = 36; i < kHeaderBytes; ++i)
    if (p[i] != 0 && !(sparse && i < 48) && !(packed && i >= 48 && i < 52))
      return bad("non-zero header padding at byte " + std::to_string(i) + " (corrupt)");
  if (h.dtype > 2) return bad("unknown dtype " + std::to_string(h.dtype));
  const TableDtype dtype = static_cast<TableDtype>(h.dtype);
  if (sparse) {
    if (!SparseRowsSupported(static_cast<int>(h.width), dtype))
      return bad("sparse rows of width " + std::to_string(h.width) + " and dtype " +
                 TableDtypeName(dtype) + " (supported: width 1 .. 64, fp32 or fp16)");
    if (h.mask_bytes != MaskBytes(static_cast<int>(h.width)))
      return bad("mask bytes " + std::to_string(h.mask_bytes) + " for width " +
                 std::to_string(h.width) + ", expected " +
                 std::to_string(MaskBytes(static_cast<int>(h.width))));
    if (h.nnz != expected.nnz)
      return bad("header says " + std::to_string(h.nnz) + " stored values; model.pb expects " +
                 std::to_string(expected.nnz));
  }
  if (static_cast<int>(h.width) != expected.width || h.rows != expected.rows ||
      dtype != expected.dtype || static_cast<int>(h.table_id) != expected.table_id)
    return bad("header says table " + std::to_string(h.table_id) + ", width " +
               std::to_string(h.width) + ", " + std::to_string(h.rows) + " rows, " +
               TableDtypeName(dtype) + "; model.pb expects table " +
               std::to_string(expected.table_id) + ", width " + std::to_string(expected.width) +
               ", " + std::to_string(expected.rows) + " rows, " + TableDtypeName(expected.dtype));
  if (h.rows >= (uint64_t{1} << 32)) return bad("more than 2^32 rows");
  if (packed && h.key_bucket_bits != static_cast<uint32_t>(PackedKeyBucketBits(h.rows)))
    return bad("packed keys in " + std::to_string(h.key_bucket_bits) + "-bit buckets, expected " +
               std::to_string(PackedKeyBucketBits(h.rows)) + " for " + std::to_string(h.rows) +
               " rows");
  // Before any size arithmetic: a width from damaged bytes (here and in
  // model.pb) must not wrap the body size into a small, plausible one.
  if (h.width < 1 || h.width > (1u << 16)) return bad("width " + std::to_string(h.width) + " is impossible");
  if (sparse && h.nnz > h.rows * h.width)
    return bad(std::to_string(h.nnz) + " stored values for " + std::to_string(h.rows) +
               " rows of width " + std::to_string(h.width));
  const uint64_t body =
      sparse ? SparseBodyBytes(expected.key_encoding, dtype, h.rows, h.width, h.nnz)
             : BodyBytes(expected.key_encoding, dtype, h.rows, h.width);
  if (size != kHeaderBytes + body)
    return bad(std::to_string(size) + " bytes, expected " + std::to_string(kHeaderBytes + body) +
               " (truncated or padded)");
  if (h.crc != expected.crc32) return bad("header checksum differs from model.pb's");
  if (Crc(0, p + kHeaderBytes, body) != h.crc)
    return bad("checksum mismatch (the file is corrupt)");
  t.width_ = static_cast<int>(h.width);
  t.padded_width_ = (h.width + 7) / 8 * 8;
  t.rows_ = h.rows;
  t.dtype_ = dtype;
  const char* after_keys = p + kHeaderBytes + KeySectionBytes(expected.key_encoding, h.rows);
  if (sparse) {
    t.masks_ = reinterpret_cast<const uint8_t*>(after_keys);
    t.mask_bytes_ = h.mask_bytes;
    t.record_bytes_ = RecordBytes(static_cast<int>(h.width));
    t.nnz_ = h.nnz;
    t.values_ = after_keys + Blocks(h.rows) * t.record_bytes_;
    // Masks within the width (and empty past the last row), block starts
    // matching the masks' counts.
    const uint64_t outside = h.width >= 64 ? 0 : ~uint64_t{0} << h.width;
    uint64_t count = 0;
    for (uint64_t b = 0; b < Blocks(h.rows); ++b) {
      uint64_t start;
      std::memcpy(&start, t.masks_ + b * t.record_bytes_, 8);
      if (start != count)
        return bad("block " + std::to_string(b) + " starts at value " + std::to_string(start) +
                   ", the masks before it hold " + std::to_string(count));
      for (uint64_t i = b * kRowsPerBlock; i < (b + 1) * kRowsPerBlock; ++i) {
        const uint64_t m = t.Mask(i);
        if (m & outside)
          return bad("row " + std::to_string(i) + " has mask bits at or above width " +
                     std::to_string(h.width));
        if (i >= h.rows && m != 0)
          return bad("block " + std::to_string(b) + " has a mask past the last row");
        count += static_cast<uint64_t>(__builtin_popcountll(m));
      }
    }
    if (count != h.nnz)
      return bad("the masks hold " + std::to_string(count) + " values, the header says " +
                 std::to_string(h.nnz));
  } else if (dtype == TableDtype::kInt8) {
    t.scales_ = reinterpret_cast<const float*>(after_keys);
    t.values_ = after_keys + h.rows * 4;
  } else {
    t.values_ = after_keys;
  }
  const Status keys_ok = t.index_.Open(expected.key_encoding,
                                       reinterpret_cast<const uint8_t*>(p + kHeaderBytes), h.rows,
                                       expected.table_id);
  if (!keys_ok.ok()) return bad(keys_ok.message());
  if (sparse) t.BuildInlineRows();
  madvise(map, size, MADV_RANDOM);
  return t;
}

void MappedTable::BuildInlineRows() {
  const size_t value_bytes = dtype_ == TableDtype::kFloat16 ? 2 : 4;
  const uint64_t buckets = index_.buckets();
  inline_.reserve(rows_ * (8 + mask_bytes_) + nnz_ * value_bytes + 64);
  inline_at_.resize(buckets + 1);
  const char* values = static_cast<const char*>(values_);
  uint64_t v = 0;  // rows are in key order, so their values follow each other
  for (uint64_t b = 0; b < buckets; ++b) {
    inline_at_[b] = inline_.size();
    for (uint64_t i = index_.Start(b); i < index_.Start(b + 1); ++i) {
      const Key key = index_.KeyInBucket(b, i);
      const uint64_t m = Mask(i);
      const size_t n = static_cast<size_t>(__builtin_popcountll(m)) * value_bytes;
      const char* k = reinterpret_cast<const char*>(&key);
      inline_.insert(inline_.end(), k, k + 8);
      const char* mb = reinterpret_cast<const char*>(&m);  // little-endian: the low bytes
      inline_.insert(inline_.end(), mb, mb + mask_bytes_);
      inline_.insert(inline_.end(), values + v * value_bytes, values + v * value_bytes + n);
      v += static_cast<uint64_t>(__builtin_popcountll(m));
    }
  }
  inline_at_[buckets] = inline_.size();
  inline_.resize(inline_.size() + 64, 0);  // what a chunk of 8 values may read past the last row
  // Lookups read the inline rows now; the file's pages come back if
  // anything else reads them (the mapping is private and read-only).
  madvise(map_, map_bytes_, MADV_DONTNEED);
}

void MappedTable::ReadSparseRow(uint64_t i, float* out) const {
  ReadSparseRowAt(i, SparseValueIndex(i), out);
}

void MappedTable::ReadSparseRowAt(uint64_t i, uint64_t v, float* out) const {
  const char* values =
      static_cast<const char*>(values_) + v * (dtype_ == TableDtype::kFloat16 ? 2 : 4);
#ifdef CTRPS_TABLE_EXPAND_AVX2
  // Rows near the end of the values take the scalar loop (the mapping may
  // end within the 8 values a chunk loads).
  if (v + static_cast<uint64_t>(PaddedWidth()) <= nnz_) {
    ExpandRow(Mask(i), values, out, /*padded=*/false);
    return;
  }
#endif
  ExpandRowScalar(Mask(i), values, out, width_);
}

void MappedTable::ReadDenseRow(uint64_t i, float* out) const {
  const size_t w = static_cast<size_t>(width_);
  switch (dtype_) {
    case TableDtype::kFloat32:
      std::memcpy(out, static_cast<const float*>(values_) + i * w, w * 4);
      return;
    case TableDtype::kFloat16: {
      const uint16_t* h = static_cast<const uint16_t*>(values_) + i * w;
#if defined(__F16C__)
      size_t k = 0;
      for (; k + 8 <= w; k += 8)
        _mm256_storeu_ps(out + k,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k))));
      for (; k < w; ++k) out[k] = _cvtsh_ss(h[k]);
#else
      for (size_t k = 0; k < w; ++k) out[k] = HalfToFloat(h[k]);
#endif
      return;
    }
    case TableDtype::kInt8: {
      const int8_t* q = static_cast<const int8_t*>(values_) + i * w;
      const float s = scales_[i];
      for (size_t k = 0; k < w; ++k) out[k] = s * static_cast<float>(q[k]);
      return;
    }
  }
}

bool MappedTable::Lookup(Key key, float* out) const {
  const int64_t i = Find(key);
  if (i < 0) {
    std::fill_n(out, width_, 0.0f);
    return false;
  }
  ReadRow(static_cast<uint64_t>(i), out);
  return true;
}

}  // namespace ctrps::worker::serve

