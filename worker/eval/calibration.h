// Calibration: does a model's mean predicted CTR match the observed CTR,
// overall and across its score range (a reliability table)?
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "worker/eval/auc.h"

namespace ctrps::worker {

// One bin of a reliability table: examples whose predictions fall in
// [min_prediction, max_prediction].
struct CalibrationBin {
  int64_t count = 0;
  double mean_prediction = 0;  // mean predicted probability in the bin
  double observed_ctr = 0;     // fraction of positives in the bin
  float min_prediction = 0;
  float max_prediction = 0;
};

// Splits `sorted` (ascending by score, scores are probabilities) into
// `num_bins` equal-count bins (the last ones may hold one example fewer;
// fewer bins when n < num_bins, none when n == 0). Equal-count rather than
// equal-width bins, because CTR predictions crowd near the base rate.
// CHECKs num_bins >= 1.
std::vector<CalibrationBin> CalibrationTable(const ScoredExample* sorted, size_t n, int num_bins);

// Expected calibration error: the count-weighted mean of
// |mean_prediction - observed_ctr| over the bins. 0 for no bins.
double ExpectedCalibrationError(const std::vector<CalibrationBin>& bins);

}  // namespace ctrps::worker
