#include "worker/eval/calibration.h"

#include <cmath>

#include "common/check.h"

namespace ctrps::worker {

std::vector<CalibrationBin> CalibrationTable(const ScoredExample* sorted, size_t n, int num_bins) {
  CHECK_GE(num_bins, 1);
  std::vector<CalibrationBin> bins;
  const size_t b = std::min(n, static_cast<size_t>(num_bins));
  size_t begin = 0;
  for (size_t k = 0; k < b; ++k) {
    // Bin k holds examples [n*k/b, n*(k+1)/b): sizes differ by at most one.
    const size_t end = n * (k + 1) / b;
    CalibrationBin bin;
    double sum_p = 0, sum_y = 0;
    for (size_t i = begin; i < end; ++i) {
      sum_p += sorted[i].score;
      sum_y += sorted[i].label;
    }
    bin.count = static_cast<int64_t>(end - begin);
    bin.mean_prediction = sum_p / bin.count;
    bin.observed_ctr = sum_y / bin.count;
    bin.min_prediction = sorted[begin].score;
    bin.max_prediction = sorted[end - 1].score;
    bins.push_back(bin);
    begin = end;
  }
  return bins;
}

double ExpectedCalibrationError(const std::vector<CalibrationBin>& bins) {
  double total = 0, weighted = 0;
  for (const CalibrationBin& bin : bins) {
    total += bin.count;
    weighted += bin.count * std::abs(bin.mean_prediction - bin.observed_ctr);
  }
  return total > 0 ? weighted / total : 0.0;
}

}  // namespace ctrps::worker
