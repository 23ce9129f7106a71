// EvalAccumulator: collects (predicted probability, label) pairs over many
// batches, and over many workers, and reports exact AUC, log loss and
// calibration.
//
// Distributed use: each worker accumulates its partition, calls Serialize(),
// the bytes are gathered to one rank (any transport that moves bytes), and
// that rank Deserialize()s and Merge()s them. AUC from merged pairs is the
// exact global AUC, identical to one process scoring everything, whatever
// the partitioning or merge order.
//
// Thread-compatible: one accumulator per thread, merged afterwards.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "worker/eval/auc.h"
#include "worker/eval/calibration.h"

namespace ctrps::worker {

struct EvalMetrics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  int64_t count = 0;      // examples
  int64_t positives = 0;  // examples with label 1
  // Exact AUC; NaN with a single class, or when pairs were not kept.
  double auc = kNaN;
  double logloss = kNaN;          // mean clipped log loss (kLoglossEps), nats; NaN when empty
  double mean_prediction = kNaN;  // mean predicted probability
  double observed_ctr = kNaN;     // positives / count
  // mean_prediction / observed_ctr: 1 is calibrated, > 1 over-predicts.
  // NaN without positives.
  double calibration_ratio = kNaN;
  // Normalized entropy (He et al., ADKDD 2014): logloss divided by the
  // entropy of always predicting observed_ctr. Below 1 means the model beats
  // the base rate; NaN with a single class.
  double normalized_entropy = kNaN;
};

class EvalAccumulator {
 public:
  // keep_pairs = false keeps only running sums: O(1) memory, no AUC and no
  // calibration table (8 bytes per example otherwise).
  explicit EvalAccumulator(bool keep_pairs = true) : keep_pairs_(keep_pairs) {}

  // Adds n predictions (probabilities in [0, 1]) with their 0/1 labels. The
  // whole batch is validated first: on error nothing is added and the
  // message names the first bad example.
  [[nodiscard]] Status Add(const float* probabilities, const float* labels, size_t n);
  [[nodiscard]] Status Add(const std::vector<float>& probabilities, const std::vector<float>& labels);
  // Adds already-paired examples (e.g. received from another rank), same rules.
  [[nodiscard]] Status AddPairs(const ScoredExample* pairs, size_t n);

  // Adds everything `other` (not *this) holds. The result keeps pairs only
  // if both did.
  void Merge(const EvalAccumulator& other);

  // Byte form for moving an accumulator between ranks: an 8-byte magic
  // "CTRPSEV1", then little-endian fields (see the .cc), then the raw pairs.
  std::string Serialize() const;
  // Corruption on a wrong magic, a wrong size or invalid pairs.
  static StatusOr<EvalAccumulator> Deserialize(std::string_view bytes);

  // Computes every metric. Sorts the kept pairs by score in place (the
  // only change to the accumulator); cheap to call again.
  EvalMetrics Compute();
  // Reliability table over the kept pairs (see CalibrationTable); empty when
  // pairs are not kept.
  std::vector<CalibrationBin> CalibrationBins(int num_bins);

  void Clear();
  int64_t count() const { return count_; }
  bool keeps_pairs() const { return keep_pairs_; }
  // The kept pairs: insertion order until Compute() sorts them.
  const std::vector<ScoredExample>& pairs() const { return pairs_; }

 private:
  void SortPairs();
  void AddValidated(float probability, float label);

  bool keep_pairs_;
  bool sorted_ = true;  // pairs_ ascending by score
  int64_t count_ = 0;
  int64_t positives_ = 0;
  double sum_prediction_ = 0;
  double sum_logloss_ = 0;
  std::vector<ScoredExample> pairs_;
};

}  // namespace ctrps::worker
