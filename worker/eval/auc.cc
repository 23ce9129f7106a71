#include "worker/eval/auc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace ctrps::worker {

double ClippedLogloss(double probability, float label) {
  double p = std::clamp(probability, kLoglossEps, 1.0 - kLoglossEps);
  return label > 0.5f ? -std::log(p) : -std::log1p(-p);
}

Status ValidateScored(const float* scores, const float* labels, size_t n,
                      bool scores_are_probabilities) {
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return Status::InvalidArgument("example " + std::to_string(i) + ": label " +
                                     std::to_string(labels[i]) + " is not 0 or 1");
    }
    float s = scores[i];
    if (!std::isfinite(s) || (scores_are_probabilities && (s < 0.0f || s > 1.0f))) {
      return Status::InvalidArgument(
          "example " + std::to_string(i) + ": score " + std::to_string(s) + " is not " +
          (scores_are_probabilities ? "a probability in [0, 1]" : "finite"));
    }
  }
  return Status::OK();
}

double AucOfSorted(const ScoredExample* sorted, size_t n) {
  // Walk groups of equal score upward. A positive beats every negative below
  // its group and ties with the group's negatives (half a win each). The sum
  // is kept doubled and in 128-bit integers, so it is exact for any n.
  unsigned __int128 twice_wins = 0;
  uint64_t negatives_below = 0, positives = 0;
  size_t i = 0;
  while (i < n) {
    uint64_t group_pos = 0, group_neg = 0;
    const float score = sorted[i].score;
    CHECK(!std::isnan(score)) << "NaN score at sorted position " << i;
    for (; i < n && sorted[i].score == score; ++i) {
      const float y = sorted[i].label;
      CHECK(y == 0.0f || y == 1.0f) << "label " << y << " is not 0 or 1";
      if (y == 1.0f) ++group_pos; else ++group_neg;
    }
    twice_wins += static_cast<unsigned __int128>(group_pos) * (2 * negatives_below + group_neg);
    negatives_below += group_neg;
    positives += group_pos;
  }
  if (positives == 0 || negatives_below == 0) return std::numeric_limits<double>::quiet_NaN();
  long double pairs = static_cast<long double>(positives) * static_cast<long double>(negatives_below);
  return static_cast<double>(static_cast<long double>(twice_wins) / (2.0L * pairs));
}

double AucInPlace(std::vector<ScoredExample>* examples) {
  for (const ScoredExample& e : *examples) CHECK(!std::isnan(e.score)) << "NaN score";
  std::sort(examples->begin(), examples->end(),
            [](const ScoredExample& a, const ScoredExample& b) { return a.score < b.score; });
  return AucOfSorted(examples->data(), examples->size());
}

StatusOr<double> ComputeAuc(const std::vector<float>& scores, const std::vector<float>& labels) {
  if (scores.size() != labels.size()) {
    return Status::InvalidArgument("AUC: " + std::to_string(scores.size()) + " scores but " +
                                   std::to_string(labels.size()) + " labels");
  }
  RETURN_IF_ERROR_CTX(ValidateScored(scores.data(), labels.data(), scores.size(), false), "AUC");
  std::vector<ScoredExample> examples(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) examples[i] = {scores[i], labels[i]};
  return AucInPlace(&examples);
}

StatusOr<double> ComputeLogloss(const std::vector<float>& probabilities,
                                const std::vector<float>& labels) {
  if (probabilities.size() != labels.size()) {
    return Status::InvalidArgument("logloss: " + std::to_string(probabilities.size()) +
                                   " probabilities but " + std::to_string(labels.size()) +
                                   " labels");
  }
  RETURN_IF_ERROR_CTX(
      ValidateScored(probabilities.data(), labels.data(), probabilities.size(), true), "logloss");
  if (probabilities.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) sum += ClippedLogloss(probabilities[i], labels[i]);
  return sum / static_cast<double>(labels.size());
}

}  // namespace ctrps::worker
