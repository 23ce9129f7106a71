// In-memory batch streams with a planted logistic model, for trainer tests.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "common/hash.h"
#include "worker/train/trainer.h"

namespace ctrps::worker::testing {

// F fields, vocab V per field; label ~ Bernoulli(sigmoid(sum of per-value
// weights + an interaction of fields 0 and 1)).
inline std::vector<Batch> PlantedBatches(int num_batches, int batch_size, int F, int V,
                                         uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Batch> out(num_batches);
  auto weight = [](int f, int v) {
    return static_cast<float>((Mix64(f * 1000003ULL + v) % 2001) / 1000.0 - 1.0);
  };
  for (Batch& b : out) {
    b.num_fields = F;
    for (int i = 0; i < batch_size; ++i) {
      float z = -0.5f;
      std::vector<int> vals(F);
      for (int f = 0; f < F; ++f) {
        // Skewed values: small ids are frequent.
        double u = std::uniform_real_distribution<double>(0, 1)(rng);
        vals[f] = static_cast<int>(V * u * u);
        z += weight(f, vals[f]);
        b.keys.push_back(MakeKey(f, Mix64(vals[f] + 1)));
        b.values.push_back(1.0f);
      }
      z += 1.5f * ((vals[0] % 2) == (vals[1] % 2) ? 1.0f : -1.0f);
      float p = 1.0f / (1.0f + std::exp(-z));
      b.labels.push_back(std::uniform_real_distribution<float>(0, 1)(rng) < p ? 1.0f : 0.0f);
    }
  }
  return out;
}

class VectorStream : public BatchSource {
 public:
  explicit VectorStream(std::vector<Batch> batches) : batches_(std::move(batches)) {}
  StatusOr<bool> Next(Batch* b) override {
    if (pos_ >= batches_.size()) return false;
    *b = batches_[pos_++];
    return true;
  }
  Status Rewind() override {
    pos_ = 0;
    return Status::OK();
  }
  std::string SkippedSummary() const override { return ""; }
  StatusOr<std::string> SavePosition() const override { return std::to_string(pos_); }
  Status RestorePosition(const std::string& p) override {
    pos_ = std::stoul(p);
    return Status::OK();
  }

 private:
  std::vector<Batch> batches_;
  size_t pos_ = 0;
};

}  // namespace ctrps::worker::testing
