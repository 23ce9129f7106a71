#include "worker/serve/table_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace ctrps::worker::serve {
namespace {

constexpr char kMagic[8] = {'C', 'T', 'R', 'P', 'S', 'E', 'M', 'B'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kSparseVersion = 2;  // sparse rows
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
};

uint32_t MaskBytes(int width) { return width <= 8 ? 1 : width <= 16 ? 2 : width <= 32 ? 4 : 8; }
uint64_t Blocks(uint64_t rows) { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }
// A block record: the value index of its first row, then its 16 rows' masks.
uint64_t RecordBytes(int width) { return 8 + kRowsPerBlock * uint64_t{MaskBytes(width)}; }

void EncodeHeader(const Header& h, char* out) {
  std::memset(out, 0, kHeaderBytes);
  std::memcpy(out, kMagic, 8);
  std::memcpy(out + 8, &h.version, 4);
  std::memcpy(out + 12, &h.dtype, 4);
  std::memcpy(out + 16, &h.width, 4);
  std::memcpy(out + 20, &h.table_id, 4);
  std::memcpy(out + 24, &h.rows, 8);
  std::memcpy(out + 32, &h.crc, 4);
  if (h.version == kSparseVersion) {
    std::memcpy(out + 36, &h.mask_bytes, 4);
    std::memcpy(out + 40, &h.nnz, 8);
  }
}

size_t ElementBytes(TableDtype t) {
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
uint64_t BodyBytes(TableDtype t, uint64_t rows, int width) {
  return rows * 8 + (t == TableDtype::kInt8 ? rows * 4 : 0) + rows * width * ElementBytes(t);
}

// Sparse rows: keys, block records, values.
uint64_t SparseBodyBytes(TableDtype t, uint64_t rows, int width, uint64_t nnz) {
  return rows * 8 + Blocks(rows) * RecordBytes(width) + nnz * ElementBytes(t);
}

Status WriteFile(const std::string& path, const Header& h, const std::string& body) {
  char header[kHeaderBytes];
  EncodeHeader(h, header);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(header, 1, kHeaderBytes, f) == kHeaderBytes &&
            std::fwrite(body.data(), 1, body.size(), f) == body.size() && std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
  return Status::OK();
}

Status CheckKeys(const std::string& path, int table_id, const Key* keys, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (KeyTable(keys[i]) != table_id)
      return Status::InvalidArgument(path + ": key " + std::to_string(keys[i]) +
                                     " belongs to table " + std::to_string(KeyTable(keys[i])) +
                                     ", not " + std::to_string(table_id));
    if (i > 0 && keys[i] <= keys[i - 1])
      return Status::InvalidArgument(path + ": keys are not strictly ascending at row " +
                                     std::to_string(i));
  }
  return Status::OK();
}

uint32_t Crc(uint32_t crc, const char* p, uint64_t n) {
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(p), chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

}  // namespace

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (x < 0x38800000u) {  // below the smallest normal half: a multiple of 2^-24
    float a;
    std::memcpy(&a, &x, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t h = ((x - 0x38000000u) >> 13);
  const uint32_t rem = x & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

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

bool SparseRowsSupported(int width, TableDtype dtype) {
  return width >= 1 && width <= 64 &&
         (dtype == TableDtype::kFloat32 || dtype == TableDtype::kFloat16);
}

uint64_t TableFileBytes(TableEntry::Layout layout, TableDtype dtype, uint64_t rows, int width,
                        uint64_t nnz) {
  return kHeaderBytes + (layout == TableEntry::Layout::kSparseRows
                             ? SparseBodyBytes(dtype, rows, width, nnz)
                             : BodyBytes(dtype, rows, width));
}

Status WriteSparseTableFile(const std::string& path, int table_id, int width, TableDtype dtype,
                            const Key* keys, size_t n, const float* rows, bool drop_empty,
                            TableEntry* entry) {
  if (!SparseRowsSupported(width, dtype))
    return Status::InvalidArgument(path + ": sparse rows need width 1 .. 64 and fp32 or fp16, not " +
                                   std::to_string(width) + " " + TableDtypeName(dtype));
  RETURN_IF_ERROR(CheckKeys(path, table_id, keys, n));
  const size_t w = static_cast<size_t>(width);
  const uint32_t mb = MaskBytes(width);
  std::string key_bytes, records, values;
  const std::string empty_record(RecordBytes(width), '\0');
  uint64_t kept = 0, nnz = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* r = rows + i * w;
    uint64_t mask = 0;
    for (size_t k = 0; k < w; ++k)
      if (r[k] != 0.0f) mask |= uint64_t{1} << k;
    if (mask == 0 && drop_empty) continue;
    if (kept % kRowsPerBlock == 0) {
      records += empty_record;
      std::memcpy(&records[records.size() - empty_record.size()], &nnz, 8);
    }
    key_bytes.append(reinterpret_cast<const char*>(&keys[i]), 8);
    std::memcpy(&records[records.size() - empty_record.size() + 8 + (kept % kRowsPerBlock) * mb],
                &mask, mb);
    for (size_t k = 0; k < w; ++k) {
      if (!(mask >> k & 1)) continue;
      if (dtype == TableDtype::kFloat32) {
        values.append(reinterpret_cast<const char*>(&r[k]), 4);
      } else {
        const uint16_t h = FloatToHalf(r[k]);
        values.append(reinterpret_cast<const char*>(&h), 2);
      }
      ++nnz;
    }
    ++kept;
  }
  std::string body = key_bytes + records + values;
  Header h;
  h.version = kSparseVersion;
  h.dtype = static_cast<uint32_t>(dtype);
  h.width = static_cast<uint32_t>(width);
  h.table_id = static_cast<uint32_t>(table_id);
  h.rows = kept;
  h.crc = Crc(0, body.data(), body.size());
  h.mask_bytes = mb;
  h.nnz = nnz;
  RETURN_IF_ERROR(WriteFile(path, h, body));
  entry->table_id = table_id;
  entry->width = width;
  entry->rows = kept;
  entry->dtype = dtype;
  entry->crc32 = h.crc;
  entry->file_bytes = kHeaderBytes + body.size();
  entry->layout = TableEntry::Layout::kSparseRows;
  entry->nnz = nnz;
  return Status::OK();
}

Status WriteTableFile(const std::string& path, int table_id, int width, TableDtype dtype,
                      const Key* keys, size_t n, const float* rows, TableEntry* entry) {
  RETURN_IF_ERROR(CheckKeys(path, table_id, keys, n));
  std::string body;
  body.reserve(BodyBytes(dtype, n, width));
  body.append(reinterpret_cast<const char*>(keys), n * 8);
  const size_t w = static_cast<size_t>(width);
  if (dtype == TableDtype::kFloat32) {
    body.append(reinterpret_cast<const char*>(rows), n * w * 4);
  } else if (dtype == TableDtype::kFloat16) {
    for (size_t i = 0; i < n * w; ++i) {
      const uint16_t h = FloatToHalf(rows[i]);
      body.append(reinterpret_cast<const char*>(&h), 2);
    }
  } else {
    std::vector<float> scales(n);
    std::string q(n * w, '\0');
    for (size_t i = 0; i < n; ++i) {
      float amax = 0;
      for (size_t k = 0; k < w; ++k) amax = std::max(amax, std::fabs(rows[i * w + k]));
      const float scale = amax > 0 ? amax / 127.0f : 1.0f;
      scales[i] = scale;
      for (size_t k = 0; k < w; ++k) {
        const float v = std::nearbyint(rows[i * w + k] / scale);
        q[i * w + k] = static_cast<char>(static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f)));
      }
    }
    body.append(reinterpret_cast<const char*>(scales.data()), n * 4);
    body += q;
  }
  Header h;
  h.dtype = static_cast<uint32_t>(dtype);
  h.width = static_cast<uint32_t>(width);
  h.table_id = static_cast<uint32_t>(table_id);
  h.rows = n;
  h.crc = Crc(0, body.data(), body.size());
  RETURN_IF_ERROR(WriteFile(path, h, body));
  entry->layout = TableEntry::Layout::kDenseRows;
  entry->nnz = 0;
  entry->table_id = table_id;
  entry->width = width;
  entry->rows = n;
  entry->dtype = dtype;
  entry->crc32 = h.crc;
  entry->file_bytes = kHeaderBytes + body.size();
  return Status::OK();
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
    keys_ = o.keys_;
    scales_ = o.scales_;
    values_ = o.values_;
    masks_ = o.masks_;
    mask_bytes_ = o.mask_bytes_;
    record_bytes_ = o.record_bytes_;
    shift_ = o.shift_;
    starts_ = std::move(o.starts_);
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
  const uint32_t want_version = sparse ? kSparseVersion : kVersion;
  if (h.version != want_version)
    return bad("format version " + std::to_string(h.version) + ", expected " +
               std::to_string(want_version) + " (model.pb says " +
               (sparse ? "sparse" : "dense") + " rows)");
  if (sparse) {
    std::memcpy(&h.mask_bytes, p + 36, 4);
    std::memcpy(&h.nnz, p + 40, 8);
  }
  for (size_t i = sparse ? 48 : 36; i < kHeaderBytes; ++i)
    if (p[i] != 0)
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
  // Before any size arithmetic: a width from damaged bytes (here and in
  // model.pb) must not wrap the body size into a small, plausible one.
  if (h.width < 1 || h.width > (1u << 16)) return bad("width " + std::to_string(h.width) + " is impossible");
  if (sparse && h.nnz > h.rows * h.width)
    return bad(std::to_string(h.nnz) + " stored values for " + std::to_string(h.rows) +
               " rows of width " + std::to_string(h.width));
  const uint64_t body = sparse ? SparseBodyBytes(dtype, h.rows, h.width, h.nnz)
                               : BodyBytes(dtype, h.rows, h.width);
  if (size != kHeaderBytes + body)
    return bad(std::to_string(size) + " bytes, expected " + std::to_string(kHeaderBytes + body) +
               " (truncated or padded)");
  if (h.crc != expected.crc32) return bad("header checksum differs from model.pb's");
  if (Crc(0, p + kHeaderBytes, body) != h.crc)
    return bad("checksum mismatch (the file is corrupt)");
  t.width_ = static_cast<int>(h.width);
  t.rows_ = h.rows;
  t.dtype_ = dtype;
  t.keys_ = reinterpret_cast<const Key*>(p + kHeaderBytes);
  const char* after_keys = p + kHeaderBytes + h.rows * 8;
  if (sparse) {
    t.masks_ = reinterpret_cast<const uint8_t*>(after_keys);
    t.mask_bytes_ = h.mask_bytes;
    t.record_bytes_ = RecordBytes(static_cast<int>(h.width));
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
  // Keys must be sorted and in this table (the writer guarantees it; a
  // hand-made file might not, and lookups rely on it).
  for (uint64_t i = 0; i < h.rows; ++i)
    if (KeyTable(t.keys_[i]) != expected.table_id || (i > 0 && t.keys_[i] <= t.keys_[i - 1]))
      return bad("keys not strictly ascending within table " + std::to_string(expected.table_id) +
                 " at row " + std::to_string(i));
  // Bucket index over the top bits of the key hash: about one key a bucket.
  int bits = 1;
  while (bits < 24 && (uint64_t{1} << bits) < h.rows) ++bits;
  t.shift_ = kKeyHashBits - bits;
  t.starts_.assign((size_t{1} << bits) + 1, 0);
  uint64_t i = 0;
  for (size_t b = 0; b < (size_t{1} << bits); ++b) {
    t.starts_[b] = static_cast<uint32_t>(i);
    while (i < h.rows && (KeyHash(t.keys_[i]) >> t.shift_) == b) ++i;
  }
  t.starts_.back() = static_cast<uint32_t>(h.rows);
  madvise(map, size, MADV_RANDOM);
  return t;
}

void MappedTable::ReadSparseRow(uint64_t i, float* out) const {
  ReadSparseRowAt(i, SparseValueIndex(i), out);
}

uint64_t MappedTable::SparseValueIndex(uint64_t i) const {
  // The block record (one cache line for masks up to 2 bytes): its start,
  // plus the bits of the masks before row i, counted a word at a time
  // without a data-dependent branch.
  const uint8_t* rec = masks_ + (i / kRowsPerBlock) * record_bytes_;
  uint64_t v;
  std::memcpy(&v, rec, 8);
  const int64_t before = static_cast<int64_t>((i % kRowsPerBlock) * mask_bytes_);
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

void MappedTable::ReadSparseRowAt(uint64_t i, uint64_t v, float* out) const {
  uint64_t m = Mask(i);
  std::fill_n(out, width_, 0.0f);
  if (dtype_ == TableDtype::kFloat32) {
    const float* vals = static_cast<const float*>(values_) + v;
    for (; m != 0; m &= m - 1) out[__builtin_ctzll(m)] = *vals++;
  } else {
    const uint16_t* vals = static_cast<const uint16_t*>(values_) + v;
    for (; m != 0; m &= m - 1) out[__builtin_ctzll(m)] = HalfToFloat(*vals++);
  }
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
