#include "ps/entry_select.h"

#include "ps/sparse_optimizer.h"

namespace ctrps::ps {

void AddRowToHistogram(const float* row, int skip, int width, int level, uint32_t prefix,
                       uint64_t* hist) {
  if (level == 0) {
    for (int i = skip; i < width; ++i) ++hist[MagnitudeBits(row[i]) >> 16];
    return;
  }
  for (int i = skip; i < width; ++i) {
    const uint32_t b = MagnitudeBits(row[i]);
    if ((b >> 16) == prefix) ++hist[b & 0xffffu];
  }
}

int PruneRow(float* row, int skip, int width, uint32_t max_bits, const SparseOptimizer* optimizer) {
  int zeroed = 0;
  for (int i = skip; i < width; ++i) {
    if (MagnitudeBits(row[i]) > max_bits) continue;
    if (row[i] != 0.0f) ++zeroed;
    row[i] = 0.0f;
    if (optimizer) optimizer->ResetEntry(row, width, i);
  }
  return zeroed;
}

namespace {

void PutU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }

std::string EncodeSet(const EntrySet& set) {
  std::string s;
  PutU32(&s, static_cast<uint32_t>(set.tables.size()));
  for (size_t i = 0; i < set.tables.size(); ++i) {
    PutU32(&s, static_cast<uint32_t>(set.tables[i]));
    PutU32(&s, static_cast<uint32_t>(set.skip[i]));
  }
  return s;
}

// Reads the set at blob[0..); *used = its bytes.
Status DecodeSet(const char* blob, size_t bytes, EntrySet* set, size_t* used) {
  uint32_t n;
  if (bytes < 4) return Status::Corruption("entry set: truncated");
  std::memcpy(&n, blob, 4);
  if (n > 256 || bytes - 4 < static_cast<size_t>(n) * 8)
    return Status::Corruption("entry set of " + std::to_string(n) + " tables in " +
                              std::to_string(bytes) + " bytes");
  set->tables.resize(n);
  set->skip.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t t, k;
    std::memcpy(&t, blob + 4 + 8 * i, 4);
    std::memcpy(&k, blob + 8 + 8 * i, 4);
    if (t >= 256 || k > (1u << 16)) return Status::Corruption("entry set: bad table or skip");
    set->tables[i] = static_cast<int>(t);
    set->skip[i] = static_cast<int>(k);
  }
  *used = 4 + static_cast<size_t>(n) * 8;
  return Status::OK();
}

}  // namespace

std::string EncodeHistogramRequest(const EntrySet& set, int level, uint32_t prefix) {
  std::string s = EncodeSet(set);
  PutU32(&s, static_cast<uint32_t>(level));
  PutU32(&s, prefix);
  return s;
}

Status DecodeHistogramRequest(const char* blob, size_t bytes, EntrySet* set, int* level,
                              uint32_t* prefix) {
  size_t used;
  RETURN_IF_ERROR(DecodeSet(blob, bytes, set, &used));
  if (bytes - used != 8) return Status::Corruption("histogram request: bad size");
  uint32_t l;
  std::memcpy(&l, blob + used, 4);
  std::memcpy(prefix, blob + used + 4, 4);
  if (l > 1 || *prefix >= kHistogramBuckets) return Status::Corruption("histogram request: bad level");
  *level = static_cast<int>(l);
  return Status::OK();
}

std::string EncodePruneRequest(const EntrySet& set, uint32_t max_bits, bool reset_state,
                               const std::string& scratch_dir) {
  std::string s = EncodeSet(set);
  PutU32(&s, max_bits);
  PutU32(&s, reset_state ? 1 : 0);
  s += scratch_dir;
  return s;
}

Status DecodePruneRequest(const char* blob, size_t bytes, EntrySet* set, uint32_t* max_bits,
                          bool* reset_state, std::string* scratch_dir) {
  size_t used;
  RETURN_IF_ERROR(DecodeSet(blob, bytes, set, &used));
  if (bytes - used < 8) return Status::Corruption("prune request: truncated");
  uint32_t r;
  std::memcpy(max_bits, blob + used, 4);
  std::memcpy(&r, blob + used + 4, 4);
  if (r > 1) return Status::Corruption("prune request: bad flag");
  *reset_state = r == 1;
  scratch_dir->assign(blob + used + 8, bytes - used - 8);
  return Status::OK();
}

}  // namespace ctrps::ps
