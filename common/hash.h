// Fast, stable 64-bit hashing. Values are persisted inside keys: never change
// these functions, or existing checkpoints map features to different rows.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace ctrps {

// The splitmix64 finaliser: a bijective 64-bit mixer.
inline constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Hash of a byte string, 8 bytes per round.
inline uint64_t HashBytes(const char* data, size_t len, uint64_t seed = 0) {
  uint64_t h = Mix64(seed ^ (0x9e3779b97f4a7c15ULL * (len + 1)));
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    h = Mix64(h ^ w) * 0x9e3779b97f4a7c15ULL;
    data += 8;
    len -= 8;
  }
  if (len > 0) {
    uint64_t w = 0;
    std::memcpy(&w, data, len);
    h = Mix64(h ^ w ^ (uint64_t{len} << 56));
  }
  return Mix64(h);
}

inline uint64_t HashString(std::string_view s, uint64_t seed = 0) {
  return HashBytes(s.data(), s.size(), seed);
}

}  // namespace ctrps
