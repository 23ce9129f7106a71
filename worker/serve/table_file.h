// Embedding table files of a serving bundle: sorted keys (8-byte or packed,
// key_index.h) and their rows, optionally quantised, behind a 64-byte
// checksummed header (the layout is documented in bundle.proto). Readers
// memory-map the file and look keys up in place; nothing is copied at load
// but a small bucket index.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "worker/serve/bundle.h"
#include "worker/serve/key_index.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#define CTRPS_TABLE_EXPAND_AVX2 1
#endif

namespace ctrps::worker::serve {

#ifdef CTRPS_TABLE_EXPAND_AVX2
namespace table_expand {
// For each 8-bit mask, the index of each set lane's value among the set
// lanes (a byte per lane; 0 in unset lanes). A table, not pdep: pdep takes
// about 16 cycles on this Zen host (measured), a table read 4.
struct ExpandTable {
  uint64_t idx[256];
  constexpr ExpandTable() : idx() {
    for (int m = 0; m < 256; ++m) {
      uint64_t v = 0;
      int n = 0;
      for (int lane = 0; lane < 8; ++lane)
        if (m >> lane & 1) v |= static_cast<uint64_t>(n++) << (8 * lane);
      idx[m] = v;
    }
  }
};
inline constexpr ExpandTable kExpand{};

// Entries [8c, 8c + 8) of a sparse row: the mask's byte c gives each set
// lane its value's index, a permute moves the values there and the unset
// lanes are zeroed. Loads 8 values from *v on (the caller checks they are
// mapped); advances *v. Inline: the single-row engine decodes 39 rows a
// prediction, and a call per row cost it several times the decode (17 ns a
// row against 3 ns inline, measured).
inline __m256 ExpandChunk(uint64_t mask, int c, const void* values, TableDtype dtype,
                          uint64_t* v) {
  const uint32_t mb = static_cast<uint32_t>(mask >> (8 * c)) & 0xffu;
  const __m256 vals =
      dtype == TableDtype::kFloat32
          ? _mm256_loadu_ps(static_cast<const float*>(values) + *v)
          : _mm256_cvtph_ps(_mm_loadu_si128(
                reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(values) + *v)));
  const __m256 moved = _mm256_permutevar8x32_ps(
      vals, _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kExpand.idx[mb]))));
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i set =
      _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(mb)), bit), bit);
  *v += static_cast<uint64_t>(__builtin_popcount(mb));
  return _mm256_and_ps(moved, _mm256_castsi256_ps(set));
}
}  // namespace table_expand
#endif

// Writes `n` rows (keys strictly ascending, rows n x width row-major floats)
// to `path` in `dtype`, and fills entry->{rows, crc32, file_bytes, width,
// dtype, table_id, key_encoding}. InvalidArgument if the keys are not
// strictly ascending or not all in table `table_id`. kU64 keys write table
// file format version 1 (what every reader reads), kPacked version 3.
[[nodiscard]] Status WriteTableFile(const std::string& path, int table_id, int width,
                                    TableDtype dtype, const Key* keys, size_t n, const float* rows,
                                    TableEntry* entry,
                                    KeyEncoding key_encoding = KeyEncoding::kU64);

// Writes the sparse-row form (table file format version 2, see bundle.proto)
// of the same rows: each row's non-zeros behind a bit mask (fp32 or fp16,
// width 1 .. 64). With drop_empty, rows with no non-zero are left out (they
// read as the bundle's zero unknown-key rows); otherwise they stay with an
// empty mask. Fills entry (layout kSparseRows, nnz, rows written, ...).
// kPacked keys: format version 4.
[[nodiscard]] Status WriteSparseTableFile(const std::string& path, int table_id, int width,
                                          TableDtype dtype, const Key* keys, size_t n,
                                          const float* rows, bool drop_empty, TableEntry* entry,
                                          KeyEncoding key_encoding = KeyEncoding::kU64);
// Whether a table of this width and dtype can be written sparse.
bool SparseRowsSupported(int width, TableDtype dtype);
// Bytes of a table file: dense rows, or sparse rows holding `nnz` values.
uint64_t TableFileBytes(TableEntry::Layout layout, KeyEncoding key_encoding, TableDtype dtype,
                        uint64_t rows, int width, uint64_t nnz);

float HalfToFloat(uint16_t h);

// A read-only, memory-mapped table. Thread-safe after Open (const only).
class MappedTable {
 public:
  MappedTable() = default;
  ~MappedTable();
  MappedTable(MappedTable&& o) noexcept;
  MappedTable& operator=(MappedTable&& o) noexcept;
  MappedTable(const MappedTable&) = delete;
  MappedTable& operator=(const MappedTable&) = delete;

  // Maps `path`, checks its header against `expected` (width, rows, dtype,
  // table id, crc32, size) and the checksum of its contents. Corruption
  // naming the file on any mismatch.
  [[nodiscard]] static StatusOr<MappedTable> Open(const std::string& path,
                                                  const TableEntry& expected);

  int width() const { return width_; }
  uint64_t rows() const { return rows_; }
  TableDtype dtype() const { return dtype_; }
  KeyEncoding key_encoding() const { return index_.encoding(); }
  // The i-th key in ascending order (row i's).
  Key KeyAt(uint64_t i) const { return index_.KeyAt(i); }

  // Index of `key` among the sorted keys, or -1.
  int64_t Find(Key key) const { return index_.Find(key); }
  bool sparse_rows() const { return masks_ != nullptr; }
  // Staged lookups (one example's fields at once, so their cache misses
  // overlap): prefetch what Find reads, in its order, then the row.
  void PrefetchBucket(Key key) const { index_.PrefetchBucket(key); }
  // The keys of key's bucket, and the row of its first key: with about one
  // key a bucket that is usually key's row, so the row's miss overlaps the
  // keys' instead of following it.
  void PrefetchKeys(Key key) const {
    const uint64_t first = index_.PrefetchKeys(key);
    if (first < rows_) PrefetchRow(first);
  }
  // Sparse rows: row i's first stored value (reads its block record).
  uint64_t SparseValueIndex(uint64_t i) const {
    // The block record (one cache line for masks up to 2 bytes): its start,
    // plus the bits of the masks before row i, counted a word at a time
    // without a data-dependent branch (16 rows a block).
    const uint8_t* rec = masks_ + (i / 16) * record_bytes_;
    uint64_t v;
    std::memcpy(&v, rec, 8);
    const int64_t before = static_cast<int64_t>((i % 16) * mask_bytes_);
    const int words = static_cast<int>(2 * mask_bytes_);  // 16 masks = 2 m words
    for (int w = 0; w < words; ++w) {
      uint64_t word;
      std::memcpy(&word, rec + 8 + 8 * w, 8);
      const int64_t avail = before - 8 * w;
      const uint64_t keep =
          avail >= 8 ? ~uint64_t{0} : avail <= 0 ? 0 : (uint64_t{1} << (8 * avail)) - 1;
      v += static_cast<uint64_t>(__builtin_popcountll(word & keep));
    }
    return v;
  }
  // Sparse-row tables are also held in memory as inline rows, built at
  // Open: each row's key, mask and values side by side, in bucket order,
  // and per bucket the byte offset of its first row. A lookup then reads
  // the bucket's offset (stage one, PrefetchInlineBucket) and one or two
  // cache lines holding key, mask and values together (stage two,
  // PrefetchInlineRows; ReadInline then finds the row in cache), instead of
  // the bucket, the keys, the block record and the values in three
  // dependent steps (single-row prediction of a 99%-sparse DeepFwFM about
  // 25% faster, measured interleaved against that path). The mapped file's
  // pages are released after the build, so the memory is about the file's
  // once, plus 8 bytes a bucket.
  bool inline_rows() const { return !inline_at_.empty(); }
  void PrefetchInlineBucket(Key key) const { __builtin_prefetch(&inline_at_[index_.Bucket(key)]); }
  // The bucket's rows are bytes [*lo, *hi) of the inline rows; prefetches
  // their first two lines.
  void PrefetchInlineRows(Key key, uint64_t* lo, uint64_t* hi) const {
    const uint64_t b = index_.Bucket(key);
    *lo = inline_at_[b];
    *hi = inline_at_[b + 1];
    const char* p = inline_.data() + *lo;
    __builtin_prefetch(p);
    if (*hi - *lo > 64 - (reinterpret_cast<uintptr_t>(p) & 63)) __builtin_prefetch(p + 64);
  }
  // Writes key's row (PaddedWidth() floats if padded, else width()) from
  // the inline rows [lo, hi) of its bucket; false if the key is absent
  // (nothing written).
  bool ReadInline(Key key, uint64_t lo, uint64_t hi, float* out, bool padded) const {
    const char* p = inline_.data();
    const size_t value_bytes = dtype_ == TableDtype::kFloat16 ? 2 : 4;
    while (lo < hi) {
      Key k;
      std::memcpy(&k, p + lo, 8);
      const uint64_t m = LoadMask(reinterpret_cast<const uint8_t*>(p + lo + 8));
      if (k == key) {
        ExpandRow(m, p + lo + 8 + mask_bytes_, out, padded);
        return true;
      }
      lo += 8 + mask_bytes_ + static_cast<uint64_t>(__builtin_popcountll(m)) * value_bytes;
    }
    return false;
  }
  // Row i's values, whose first is value v (SparseValueIndex), to out[0, width).
  void ReadSparseRowAt(uint64_t i, uint64_t v, float* out) const;
  int PaddedWidth() const { return static_cast<int>(padded_width_); }
  void PrefetchRow(uint64_t i) const {
    if (masks_ != nullptr)
      __builtin_prefetch(masks_ + (i / 16) * record_bytes_);
    else if (scales_ == nullptr)
      __builtin_prefetch(static_cast<const char*>(values_) +
                         i * width_ * (dtype_ == TableDtype::kFloat16 ? 2 : 4));
  }
  // Writes row i (width floats, dequantised; zeros where a sparse row stores nothing) to out.
  void ReadRow(uint64_t i, float* out) const {
    if (masks_ != nullptr)
      ReadSparseRow(i, out);
    else
      ReadDenseRow(i, out);
  }
  // Writes key's row to out, or zeros if the key is absent; returns whether found.
  bool Lookup(Key key, float* out) const;

 private:
  void Unmap();
  void ReadDenseRow(uint64_t i, float* out) const;
  void ReadSparseRow(uint64_t i, float* out) const;
  void BuildInlineRows();
  // The values at `values` (mask m's set entries, in order) spread into
  // out[0, width) or, padded, out[0, PaddedWidth()), zeros elsewhere.
  // Vectorised it reads up to 8 values past the row's (the caller makes
  // sure they are there: the inline rows end with padding).
  void ExpandRow(uint64_t m, const char* values, float* out, bool padded) const {
#ifdef CTRPS_TABLE_EXPAND_AVX2
    // Whole chunks of 8; the last partial chunk of an unpadded row through a
    // buffer (a masked store is slow on Zen).
    uint64_t v = 0;
    int c = 0;
    for (; 8 * c + 8 <= width_ || (padded && 8 * c < width_); ++c)
      _mm256_storeu_ps(out + 8 * c, table_expand::ExpandChunk(m, c, values, dtype_, &v));
    if (8 * c < width_) {
      alignas(32) float tail[8];
      _mm256_store_ps(tail, table_expand::ExpandChunk(m, c, values, dtype_, &v));
      for (int k = 0; k < width_ - 8 * c; ++k) out[8 * c + k] = tail[k];
    }
#else
    ExpandRowScalar(m, values, out, padded ? PaddedWidth() : width_);
#endif
  }
  // The same one value at a time, into out[0, n); reads nothing past the row.
  void ExpandRowScalar(uint64_t m, const char* values, float* out, int n) const {
    std::fill_n(out, n, 0.0f);
    for (int j = 0; m != 0; m &= m - 1, ++j) {
      float x;
      if (dtype_ == TableDtype::kFloat32) {
        std::memcpy(&x, values + 4 * j, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, values + 2 * j, 2);
        x = HalfToFloat(h);
      }
      out[__builtin_ctzll(m)] = x;
    }
  }
  uint64_t Mask(uint64_t i) const {
    return LoadMask(masks_ + (i / 16) * record_bytes_ + 8 + (i % 16) * mask_bytes_);
  }
  // A row's mask of mask_bytes_ bytes at p (a block record's, or an inline row's).
  uint64_t LoadMask(const uint8_t* p) const {
    // Fixed-size loads into variables of their size: a variable-size memcpy
    // is a call, and a 2-byte copy into a zeroed uint64_t is a narrow store
    // then a wide load, which cannot forward (about 15 cycles on Zen).
    switch (mask_bytes_) {
      case 1: return p[0];
      case 2: { uint16_t m; std::memcpy(&m, p, 2); return m; }
      case 4: { uint32_t m; std::memcpy(&m, p, 4); return m; }
      case 8: { uint64_t m; std::memcpy(&m, p, 8); return m; }
      default: {
        uint64_t m = 0;
        for (size_t b = 0; b < mask_bytes_; ++b) m |= static_cast<uint64_t>(p[b]) << (8 * b);
        return m;
      }
    }
  }

  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  int width_ = 0;
  uint64_t rows_ = 0;
  TableDtype dtype_ = TableDtype::kFloat32;
  KeyIndex index_;
  const float* scales_ = nullptr;  // int8 only
  const void* values_ = nullptr;
  // Sparse rows (format version 2): block records of 16 rows (value start, masks).
  const uint8_t* masks_ = nullptr;  // the first record
  size_t mask_bytes_ = 0, record_bytes_ = 0;
  uint64_t nnz_ = 0;  // stored values (the vector decode reads up to 8 past a row's)
  std::vector<char> inline_;          // sparse rows: the inline rows (then padding)
  std::vector<uint64_t> inline_at_;   // per bucket (+ the end): its rows' first byte
  uint64_t padded_width_ = 0;  // width rounded up to 8
};

// IEEE half <-> float, round to nearest even (for fp16 tables).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

}  // namespace ctrps::worker::serve
