// Feature keys: 64 bits, the table id in the top 8 bits and the hashed
// feature value in the low 56. Persisted (RocksDB, checkpoints, exports):
// never change the layout.
#pragma once

#include <cstdint>

#include "common/hash.h"

namespace ctrps {

using Key = uint64_t;

inline constexpr int kTableBits = 8;
inline constexpr int kMaxTables = 1 << kTableBits;
inline constexpr int kKeyHashBits = 64 - kTableBits;
inline constexpr uint64_t kKeyHashMask = (uint64_t{1} << kKeyHashBits) - 1;

inline constexpr Key MakeKey(int table, uint64_t hash) {
  return (static_cast<uint64_t>(table) << kKeyHashBits) | (hash & kKeyHashMask);
}
inline constexpr int KeyTable(Key key) { return static_cast<int>(key >> kKeyHashBits); }
inline constexpr uint64_t KeyHash(Key key) { return key & kKeyHashMask; }

// The virtual shard of a key among `num_shards` (fixed when a job is
// created). Persisted through checkpoints: never change the function.
inline uint32_t VirtualShardOf(Key key, uint32_t num_shards) {
  return static_cast<uint32_t>(Mix64(key ^ 0x5ca1ab1e0ddba11ULL) % num_shards);
}

}  // namespace ctrps
