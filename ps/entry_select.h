// Selection over embedding entries spread across tables and shards
// (DeepLight's one global threshold, COMPRESSION.md section 3): magnitude
// histograms computed where the rows live and summed, then the entries at
// or below a threshold zeroed where they live. An entry's magnitude is
// compared through its bit pattern with the sign cleared (non-negative
// floats order as their bits), so the histograms are exact and integer
// sums, and any layout gives the same counts.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"

namespace ctrps::ps {

class SparseOptimizer;

// Floats [skip[t], width) of every row of each table t (skip: the leading
// floats left out, e.g. a first-order weight).
struct EntrySet {
  std::vector<int> tables;
  std::vector<int> skip;
};

inline constexpr int kHistogramBuckets = 65536;

inline uint32_t MagnitudeBits(float w) {
  uint32_t b;
  std::memcpy(&b, &w, 4);
  return b & 0x7fffffffu;
}

// Adds the entries of one row (`width` floats, [skip, width) counted) to a
// kHistogramBuckets histogram: level 0 by the high 16 magnitude bits;
// level 1 by the low 16 bits of the entries whose high half is `prefix`.
void AddRowToHistogram(const float* row, int skip, int width, int level, uint32_t prefix,
                       uint64_t* hist);

// Zeroes the entries [skip, width) of `row` whose magnitude bits are <=
// max_bits, and (optimizer non-null) their optimizer state, so that zero
// gradients keep them at 0. Returns how many entries it zeroed that were
// not already 0.
int PruneRow(float* row, int skip, int width, uint32_t max_bits, const SparseOptimizer* optimizer);

// Request blobs (kEntryHistogram, kPruneEntries). Decoding checks sizes.
std::string EncodeHistogramRequest(const EntrySet& set, int level, uint32_t prefix);
[[nodiscard]] Status DecodeHistogramRequest(const char* blob, size_t bytes, EntrySet* set,
                                            int* level, uint32_t* prefix);
std::string EncodePruneRequest(const EntrySet& set, uint32_t max_bits, bool reset_state,
                               const std::string& scratch_dir);
[[nodiscard]] Status DecodePruneRequest(const char* blob, size_t bytes, EntrySet* set,
                                        uint32_t* max_bits, bool* reset_state,
                                        std::string* scratch_dir);

}  // namespace ctrps::ps
