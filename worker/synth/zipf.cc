#include "worker/synth/zipf.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace ctrps::worker::synth {
namespace {

// log(1 + x) / x, continuous at 0.
double Helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// (exp(x) - 1) / x, continuous at 0.
double Helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x
                            : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(uint64_t n, double exponent) : n_(n), exponent_(exponent) {
  CHECK_GE(n, 1u);
  CHECK(exponent > 0) << "Zipf exponent " << exponent;
  h_integral_x1_ = H(1.5) - 1.0;
  h_integral_n_ = H(static_cast<double>(n) + 0.5);
  s_ = 2.0 - HInverse(H(2.5) - h(2.0));
  if (n <= kZipfTableMax) BuildAliasTable();
}

// Vose's alias method: O(n) set-up from the exact probabilities.
void ZipfSampler::BuildAliasTable() {
  const size_t n = n_;
  std::vector<double> scaled(n);
  double total = 0;
  for (size_t k = 0; k < n; ++k) total += scaled[k] = h(static_cast<double>(k + 1));
  for (double& p : scaled) p *= n / total;
  accept_.assign(n, 1.0);
  alias_.resize(n);
  std::vector<uint32_t> small, large;
  for (size_t k = n; k-- > 0;) (scaled[k] < 1.0 ? small : large).push_back(static_cast<uint32_t>(k));
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back(), l = large.back();
    small.pop_back();
    accept_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding: always accept (accept_ is already 1).
  for (uint32_t k : small) alias_[k] = k;
  for (uint32_t k : large) alias_[k] = k;
}

// H(x) = (x^(1-s) - 1) / (1 - s), written to stay exact as s -> 1 (log x).
double ZipfSampler::H(double x) const {
  const double log_x = std::log(x);
  return Helper2((1.0 - exponent_) * log_x) * log_x;
}

double ZipfSampler::HInverse(double x) const {
  // Rounding can push t slightly below -1; clamp to the domain.
  const double t = std::max(-1.0, x * (1.0 - exponent_));
  return std::exp(Helper1(t) * x);
}

double ZipfSampler::h(double x) const { return std::exp(-exponent_ * std::log(x)); }

uint64_t ZipfSampler::Sample(Rng& rng) const {
  if (n_ == 1) return 1;
  if (!accept_.empty()) {
    // One 64-bit draw: the high 32 bits pick a slot, the low 32 bits decide.
    const uint64_t r = rng.Next();
    const uint64_t slot = ((r >> 32) * n_) >> 32;
    const double u = static_cast<double>(r & 0xffffffffu) * 0x1.0p-32;
    return 1 + (u < accept_[slot] ? slot : alias_[slot]);
  }
  const double max_k = static_cast<double>(n_);
  while (true) {
    // u is uniform in (h_integral_x1_, h_integral_n_].
    const double u = h_integral_n_ + rng.Uniform() * (h_integral_x1_ - h_integral_n_);
    const double x = HInverse(u);
    const double k = std::clamp(std::floor(x + 0.5), 1.0, max_k);
    if (k - x <= s_ || u >= H(k + 0.5) - h(k)) return static_cast<uint64_t>(k);
  }
}

}  // namespace ctrps::worker::synth
