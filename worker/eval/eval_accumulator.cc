#include "worker/eval/eval_accumulator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ctrps::worker {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "Serialize writes host byte order, which must be little-endian");

constexpr char kMagic[8] = {'C', 'T', 'R', 'P', 'S', 'E', 'V', '1'};
constexpr uint32_t kFlagKeepPairs = 1;

// Serialized header, in this order (56 bytes), then num_pairs ScoredExamples:
// magic[8], uint32 flags, uint32 reserved (0), int64 count, int64 positives,
// float64 sum_prediction, float64 sum_logloss, uint64 num_pairs.
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T Get(const char** p) {
  T v;
  std::memcpy(&v, *p, sizeof(T));
  *p += sizeof(T);
  return v;
}

// Binary entropy in nats of a Bernoulli(p).
double Entropy(double p) {
  if (p <= 0 || p >= 1) return 0;
  return -(p * std::log(p) + (1 - p) * std::log1p(-p));
}

}  // namespace

void EvalAccumulator::AddValidated(float probability, float label) {
  ++count_;
  positives_ += label == 1.0f;
  sum_prediction_ += probability;
  sum_logloss_ += ClippedLogloss(probability, label);
  if (keep_pairs_) {
    pairs_.push_back({probability, label});
    sorted_ = false;
  }
}

Status EvalAccumulator::Add(const float* probabilities, const float* labels, size_t n) {
  RETURN_IF_ERROR(ValidateScored(probabilities, labels, n, true));
  if (keep_pairs_) pairs_.reserve(pairs_.size() + n);
  for (size_t i = 0; i < n; ++i) AddValidated(probabilities[i], labels[i]);
  return Status::OK();
}

Status EvalAccumulator::Add(const std::vector<float>& probabilities,
                            const std::vector<float>& labels) {
  if (probabilities.size() != labels.size()) {
    return Status::InvalidArgument(std::to_string(probabilities.size()) + " predictions but " +
                                   std::to_string(labels.size()) + " labels");
  }
  return Add(probabilities.data(), labels.data(), labels.size());
}

Status EvalAccumulator::AddPairs(const ScoredExample* pairs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    RETURN_IF_ERROR_CTX(ValidateScored(&pairs[i].score, &pairs[i].label, 1, true),
                        "pair " + std::to_string(i));
  }
  if (keep_pairs_) pairs_.reserve(pairs_.size() + n);
  for (size_t i = 0; i < n; ++i) AddValidated(pairs[i].score, pairs[i].label);
  return Status::OK();
}

void EvalAccumulator::Merge(const EvalAccumulator& other) {
  CHECK(&other != this) << "merging an accumulator into itself";
  count_ += other.count_;
  positives_ += other.positives_;
  sum_prediction_ += other.sum_prediction_;
  sum_logloss_ += other.sum_logloss_;
  if (keep_pairs_ && other.keep_pairs_) {
    pairs_.insert(pairs_.end(), other.pairs_.begin(), other.pairs_.end());
    sorted_ = sorted_ && other.pairs_.empty();
  } else {
    keep_pairs_ = false;
    pairs_.clear();
    pairs_.shrink_to_fit();
  }
}

std::string EvalAccumulator::Serialize() const {
  std::string out;
  out.reserve(kHeaderBytes + pairs_.size() * sizeof(ScoredExample));
  out.append(kMagic, sizeof(kMagic));
  Put<uint32_t>(&out, keep_pairs_ ? kFlagKeepPairs : 0);
  Put<uint32_t>(&out, 0);
  Put<int64_t>(&out, count_);
  Put<int64_t>(&out, positives_);
  Put<double>(&out, sum_prediction_);
  Put<double>(&out, sum_logloss_);
  Put<uint64_t>(&out, pairs_.size());
  out.append(reinterpret_cast<const char*>(pairs_.data()), pairs_.size() * sizeof(ScoredExample));
  return out;
}

StatusOr<EvalAccumulator> EvalAccumulator::Deserialize(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("eval accumulator: " + std::to_string(bytes.size()) +
                              " bytes do not start with a CTRPSEV1 header");
  }
  const char* p = bytes.data() + sizeof(kMagic);
  const uint32_t flags = Get<uint32_t>(&p);
  Get<uint32_t>(&p);
  EvalAccumulator acc((flags & kFlagKeepPairs) != 0);
  const int64_t count = Get<int64_t>(&p);
  const int64_t positives = Get<int64_t>(&p);
  const double sum_prediction = Get<double>(&p);
  const double sum_logloss = Get<double>(&p);
  const uint64_t num_pairs = Get<uint64_t>(&p);
  const size_t payload = bytes.size() - kHeaderBytes;
  if (num_pairs > payload / sizeof(ScoredExample) ||
      payload != num_pairs * sizeof(ScoredExample)) {
    return Status::Corruption("eval accumulator: header says " + std::to_string(num_pairs) +
                              " pairs but " + std::to_string(payload) + " payload bytes follow");
  }
  if (count < 0 || positives < 0 || positives > count || !(sum_prediction >= 0) ||
      !(sum_logloss >= 0) || (acc.keep_pairs_ ? num_pairs != static_cast<uint64_t>(count)
                                               : num_pairs != 0)) {
    return Status::Corruption("eval accumulator: inconsistent header (count " +
                              std::to_string(count) + ", positives " + std::to_string(positives) +
                              ", pairs " + std::to_string(num_pairs) + ")");
  }
  if (acc.keep_pairs_) {
    std::vector<ScoredExample> pairs(num_pairs);
    std::memcpy(pairs.data(), p, payload);
    Status st = acc.AddPairs(pairs.data(), pairs.size());
    if (!st.ok()) return Status::Corruption("eval accumulator: corrupt payload: " + st.message());
    if (acc.positives_ != positives) {
      return Status::Corruption("eval accumulator: header says " + std::to_string(positives) +
                                " positives, pairs hold " + std::to_string(acc.positives_));
    }
  }
  // The sums travel as sent, so a round trip is bit-exact.
  acc.count_ = count;
  acc.positives_ = positives;
  acc.sum_prediction_ = sum_prediction;
  acc.sum_logloss_ = sum_logloss;
  return acc;
}

void EvalAccumulator::SortPairs() {
  if (sorted_) return;
  std::sort(pairs_.begin(), pairs_.end(),
            [](const ScoredExample& a, const ScoredExample& b) { return a.score < b.score; });
  sorted_ = true;
}

EvalMetrics EvalAccumulator::Compute() {
  EvalMetrics m;
  m.count = count_;
  m.positives = positives_;
  if (count_ == 0) return m;
  const double n = static_cast<double>(count_);
  m.logloss = sum_logloss_ / n;
  m.mean_prediction = sum_prediction_ / n;
  m.observed_ctr = positives_ / n;
  if (positives_ > 0) m.calibration_ratio = m.mean_prediction / m.observed_ctr;
  if (positives_ > 0 && positives_ < count_) m.normalized_entropy = m.logloss / Entropy(m.observed_ctr);
  if (keep_pairs_) {
    SortPairs();
    m.auc = AucOfSorted(pairs_.data(), pairs_.size());
  }
  return m;
}

std::vector<CalibrationBin> EvalAccumulator::CalibrationBins(int num_bins) {
  if (!keep_pairs_) return {};
  SortPairs();
  return CalibrationTable(pairs_.data(), pairs_.size(), num_bins);
}

void EvalAccumulator::Clear() {
  sorted_ = true;
  count_ = positives_ = 0;
  sum_prediction_ = sum_logloss_ = 0;
  pairs_.clear();
}

}  // namespace ctrps::worker
