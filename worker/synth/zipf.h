// Zipf-distributed value ids: P(k) proportional to k^-s over k = 1..n.
// Large vocabularies use rejection-inversion (Hormann and Derflinger,
// "Rejection-inversion to generate variates from monotone discrete
// distributions", 1996; the form used by Apache Commons RNG): O(1) memory
// for any n, a few transcendental calls per draw, acceptance near 1. Up to
// kZipfTableMax values, a Walker alias table (12 bytes a value) answers in
// one draw and no transcendental call. Both are exact.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/synth/synth_random.h"

namespace ctrps::worker::synth {

inline constexpr uint64_t kZipfTableMax = 1 << 16;

class ZipfSampler {
 public:
  // n >= 1 values, exponent > 0 (CHECKed; SynthOptions validates first).
  ZipfSampler(uint64_t n, double exponent);

  // A value id in [1, n]; id 1 is the most frequent.
  uint64_t Sample(Rng& rng) const;

  uint64_t n() const { return n_; }
  double exponent() const { return exponent_; }

 private:
  void BuildAliasTable();
  double H(double x) const;         // integral of h from 1 to x, shifted
  double HInverse(double x) const;
  double h(double x) const;         // x^-s

  uint64_t n_;
  double exponent_;
  double h_integral_x1_;  // H(1.5) - 1
  double h_integral_n_;   // H(n + 0.5)
  double s_;              // squeeze: accept at once when k - x <= s_
  // Alias table (n <= kZipfTableMax): value i+1 with probability
  // accept_[i] / n, else alias_[i] + 1.
  std::vector<double> accept_;
  std::vector<uint32_t> alias_;
};

}  // namespace ctrps::worker::synth
