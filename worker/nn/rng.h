// Deterministic random numbers for initialisation and dropout. Built on
// splitmix64 rather than <random> distributions, whose output differs
// between standard libraries: the same seed gives the same model everywhere.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hash.h"

namespace ctrps::worker {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return Mix64(state_);
  }
  // Uniform in [0, 1), 24 random bits.
  float Uniform() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  // Standard normal (Box-Muller, one draw per call).
  double Normal() {
    const double u1 = (static_cast<double>(Next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    const double u2 = static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

// The murmur3 32-bit finaliser: a bijection on uint32, cheap enough to run
// per activation in a vectorised loop (dropout masks).
inline uint32_t Mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bU;
  x ^= x >> 13;
  x *= 0xc2b2ae35U;
  x ^= x >> 16;
  return x;
}

// Dropout keeps element `index` of the mask keyed by `key` iff
// Mix32(index ^ key) >= threshold, where threshold = rate * 2^32.
inline uint32_t DropoutThreshold(float rate) {
  const double t = std::ldexp(static_cast<double>(rate), 32);
  return t >= 4294967295.0 ? 0xffffffffU : static_cast<uint32_t>(t);
}

// The per-call mask key: distinct for every (seed, stream, call).
inline uint32_t DropoutKey(uint64_t seed, uint64_t stream, uint64_t call) {
  return static_cast<uint32_t>(Mix64(seed ^ Mix64(stream * 0x9e3779b97f4a7c15ULL + Mix64(call))));
}

}  // namespace ctrps::worker
