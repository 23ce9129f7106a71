// Criteo-shaped training batches with Zipf keys, held in memory, for the
// training and parameter-server benchmarks (train_bench, ps_bench): both time
// the same data so their samples/s compare.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"
#include "worker/data/batch.h"
#include "worker/train/trainer.h"

namespace ctrps::bench {

constexpr int kZipfFields = 39;

// Criteo-like cardinalities: a few tiny fields, many mid, a few huge.
inline int ZipfVocab(int f) {
  static const int kV[] = {50,    100,   80,    60,     120,    300,    90,      70,
                           200,   10,    40,    30,     150,    1400,   550,     2000000,
                           500000, 300,  20,    12000,  600,    3,      90000,   5000,
                           3000000, 3000, 26,   10000,  2000000, 10,    5000,    2000,
                           4,     1000000, 15,  15,     200000, 90,     80000};
  return kV[f];
}

// n batches of batch_size rows over kZipfFields one-hot fields; labels from a
// per-value logistic model so training has a signal.
inline std::vector<worker::Batch> MakeZipfBatches(int n, int batch_size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<worker::Batch> out(n);
  for (worker::Batch& b : out) {
    b.num_fields = kZipfFields;
    b.Reserve(batch_size);
    for (int i = 0; i < batch_size; ++i) {
      double z = -1.3;
      for (int f = 0; f < kZipfFields; ++f) {
        // Zipf(s ~ 1.1)-like draw by inversion of a power law over [1, V].
        double x = std::pow(u(rng), 1.0 / (1.0 - 1.1));
        int v = static_cast<int>(std::fmin(x, ZipfVocab(f))) - 1;
        b.keys.push_back(MakeKey(f, Mix64(v * 977 + f)));
        b.values.push_back(1.0f);
        z += (Mix64(v + 31 * f) % 1000) / 2000.0 - 0.25;
      }
      b.labels.push_back(u(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f);
    }
  }
  return out;
}

// Replays a fixed set of batches for `steps` steps.
class LoopStream : public worker::BatchSource {
 public:
  LoopStream(const std::vector<worker::Batch>* b, int steps) : b_(b), steps_(steps) {}
  StatusOr<bool> Next(worker::Batch* out) override {
    if (i_ >= steps_) return false;
    *out = (*b_)[i_++ % b_->size()];
    return true;
  }
  Status Rewind() override { i_ = 0; return Status::OK(); }
  std::string SkippedSummary() const override { return ""; }
  StatusOr<std::string> SavePosition() const override { return std::to_string(i_); }
  Status RestorePosition(const std::string& p) override {
    i_ = std::stoi(p);
    return Status::OK();
  }

 private:
  const std::vector<worker::Batch>* b_;
  int steps_, i_ = 0;
};

}  // namespace ctrps::bench
