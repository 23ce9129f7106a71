// Randomness for the synthetic data generator. Two kinds, kept apart:
// - Rng: a sequential stream (xoshiro256**), one per chunk of rows, for what
//   is drawn per row (feature values, labels).
// - Hash-derived values: pure functions of (seed, field, value id), for what
//   belongs to a feature value (weights, latent vectors). Nothing per value
//   is stored, so vocabularies of hundreds of millions cost no memory.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hash.h"

namespace ctrps::worker::synth {

inline constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// A deterministic hash of two words (order matters).
inline constexpr uint64_t HashPair(uint64_t a, uint64_t b) { return Mix64(a ^ Mix64(b + kGolden)); }

// [0, 1) with 53 random bits.
inline double UnitFromHash(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// A zero-mean, unit-variance, bell-shaped value from one hash: the sum of
// four 16-bit uniforms (Irwin-Hall), rescaled; bounded by +-3.46. Cheaper
// than an exact normal and plenty for planted weights.
inline double NormalFromHash(uint64_t h) {
  double s = static_cast<double>(h & 0xffff) + static_cast<double>((h >> 16) & 0xffff) +
             static_cast<double>((h >> 32) & 0xffff) + static_cast<double>(h >> 48);
  return (s / 65536.0 - 2.0) * 1.7320508075688772;  // sqrt(12 / 4)
}

// xoshiro256** (Blackman and Vigna), seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed += kGolden;
      word = Mix64(seed);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double Uniform() { return UnitFromHash(Next()); }  // [0, 1)
  // (0, 1): safe under log().
  double UniformOpen() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal (Box-Muller, two uniforms per call, nothing cached so
  // every call consumes the same number of draws).
  double Normal() {
    double r = std::sqrt(-2.0 * std::log(UniformOpen()));
    return r * std::cos(6.283185307179586 * Uniform());
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace ctrps::worker::synth
