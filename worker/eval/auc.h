// Exact ROC AUC and log loss: the two numbers every CTR run reports.
//
// AUC here is the Mann-Whitney statistic P(score(pos) > score(neg)) with
// tied scores counted 1/2, computed exactly by sorting (O(n log n)), never
// by histogram bins. It is undefined when the examples hold only one class;
// every function in this folder returns NaN then (not an error), so a
// training loop can log it without special cases (metrics files write NaN
// as JSON null). Bad input (a label other than 0/1, a NaN score, sizes that
// differ) is an error from the validating functions and a CHECK failure in
// the in-place kernel, whose callers have validated already.
#pragma once

#include <cstddef>
#include <vector>

#include "common/status.h"

namespace ctrps::worker {

// One scored example: a model score (a probability wherever log loss or
// calibration is wanted; any monotone score for AUC) and its 0/1 label,
// a float like Batch::labels. 8 bytes, so millions fit in a message.
struct ScoredExample {
  float score;
  float label;
};
static_assert(sizeof(ScoredExample) == 8, "ScoredExample is sent raw between ranks");

// Log loss clips probabilities into [kLoglossEps, 1 - kLoglossEps], so one
// confident mistake costs at most -ln(1e-7) = 16.1 nats instead of infinity.
// 1e-7 sits just above float32 resolution below 1 (6e-8), where a float
// sigmoid saturates to exactly 1.
inline constexpr double kLoglossEps = 1e-7;

// -[y ln p + (1 - y) ln(1 - p)] with p clipped as above; label is 0 or 1.
double ClippedLogloss(double probability, float label);

// Checks n scored examples: every label exactly 0 or 1, every score finite,
// and when `scores_are_probabilities`, every score in [0, 1]. The error
// names the first bad index and value.
Status ValidateScored(const float* scores, const float* labels, size_t n,
                      bool scores_are_probabilities);

// Exact AUC of `examples`, which it sorts by score (the order is the only
// side effect). NaN when there is no positive or no negative. CHECKs that
// labels are 0/1 and no score is NaN.
double AucInPlace(std::vector<ScoredExample>* examples);

// The same on an already sorted (by score, ascending) range.
double AucOfSorted(const ScoredExample* sorted, size_t n);

// Validating conveniences over parallel arrays: InvalidArgument on bad
// input (see ValidateScored), NaN for a single class or no examples.
StatusOr<double> ComputeAuc(const std::vector<float>& scores, const std::vector<float>& labels);
// Mean clipped log loss in nats; scores must be probabilities. NaN when empty.
StatusOr<double> ComputeLogloss(const std::vector<float>& probabilities,
                                const std::vector<float>& labels);

}  // namespace ctrps::worker
