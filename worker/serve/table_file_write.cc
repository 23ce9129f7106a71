// Writing bundle table files (table_file.h): dense or sparse rows, 8-byte or
// packed keys.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "worker/serve/table_file.h"
#include "worker/serve/table_file_format.h"

namespace ctrps::worker::serve {
namespace {

using namespace table_format;  // NOLINT: this file is the format's writer

void EncodeHeader(const Header& h, char* out) {
  std::memset(out, 0, kHeaderBytes);
  std::memcpy(out, kMagic, 8);
  std::memcpy(out + 8, &h.version, 4);
  std::memcpy(out + 12, &h.dtype, 4);
  std::memcpy(out + 16, &h.width, 4);
  std::memcpy(out + 20, &h.table_id, 4);
  std::memcpy(out + 24, &h.rows, 8);
  std::memcpy(out + 32, &h.crc, 4);
  if (SparseVersion(h.version)) {
    std::memcpy(out + 36, &h.mask_bytes, 4);
    std::memcpy(out + 40, &h.nnz, 8);
  }
  if (PackedVersion(h.version)) std::memcpy(out + 48, &h.key_bucket_bits, 4);
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

bool SparseRowsSupported(int width, TableDtype dtype) {
  return width >= 1 && width <= 64 &&
         (dtype == TableDtype::kFloat32 || dtype == TableDtype::kFloat16);
}

uint64_t TableFileBytes(TableEntry::Layout layout, KeyEncoding key_encoding, TableDtype dtype,
                        uint64_t rows, int width, uint64_t nnz) {
  return kHeaderBytes + (layout == TableEntry::Layout::kSparseRows
                             ? SparseBodyBytes(key_encoding, dtype, rows, width, nnz)
                             : BodyBytes(key_encoding, dtype, rows, width));
}

Status WriteSparseTableFile(const std::string& path, int table_id, int width, TableDtype dtype,
                            const Key* keys, size_t n, const float* rows, bool drop_empty,
                            TableEntry* entry, KeyEncoding key_encoding) {
  if (!SparseRowsSupported(width, dtype))
    return Status::InvalidArgument(path + ": sparse rows need width 1 .. 64 and fp32 or fp16, not " +
                                   std::to_string(width) + " " + TableDtypeName(dtype));
  RETURN_IF_ERROR(CheckKeys(path, table_id, keys, n));
  const size_t w = static_cast<size_t>(width);
  const uint32_t mb = MaskBytes(width);
  std::vector<Key> kept_keys;
  std::string records, values;
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
    kept_keys.push_back(keys[i]);
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
  std::string body;
  AppendKeySection(key_encoding, kept_keys.data(), kept_keys.size(), &body);
  body += records;
  body += values;
  Header h;
  h.version = FileVersion(TableEntry::Layout::kSparseRows, key_encoding);
  if (key_encoding == KeyEncoding::kPacked) h.key_bucket_bits = PackedKeyBucketBits(kept);
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
  entry->key_encoding = key_encoding;
  return Status::OK();
}

Status WriteTableFile(const std::string& path, int table_id, int width, TableDtype dtype,
                      const Key* keys, size_t n, const float* rows, TableEntry* entry,
                      KeyEncoding key_encoding) {
  RETURN_IF_ERROR(CheckKeys(path, table_id, keys, n));
  std::string body;
  body.reserve(BodyBytes(key_encoding, dtype, n, width));
  AppendKeySection(key_encoding, keys, n, &body);
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
  h.version = FileVersion(TableEntry::Layout::kDenseRows, key_encoding);
  if (key_encoding == KeyEncoding::kPacked) h.key_bucket_bits = PackedKeyBucketBits(n);
  h.dtype = static_cast<uint32_t>(dtype);
  h.width = static_cast<uint32_t>(width);
  h.table_id = static_cast<uint32_t>(table_id);
  h.rows = n;
  h.crc = Crc(0, body.data(), body.size());
  RETURN_IF_ERROR(WriteFile(path, h, body));
  entry->layout = TableEntry::Layout::kDenseRows;
  entry->key_encoding = key_encoding;
  entry->nnz = 0;
  entry->table_id = table_id;
  entry->width = width;
  entry->rows = n;
  entry->dtype = dtype;
  entry->crc32 = h.crc;
  entry->file_bytes = kHeaderBytes + body.size();
  return Status::OK();
}

}  // namespace ctrps::worker::serve
