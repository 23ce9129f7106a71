#include "worker/nn/dense_optimizer.h"

#include <cmath>
#include <string>

#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

// Elements per thread below which an update is not worth splitting.
constexpr int64_t kMinPerThread = 1 << 14;

class Sgd : public DenseOptimizer {
 public:
  Sgd(const DenseOptimizerOptions& o, size_t size) : DenseOptimizer(size), o_(o) {}

  void Step(float* w, const float* g) override {
    ++steps_;
    const float lr = o_.learning_rate, l2 = o_.l2;
    ParallelFor(static_cast<int64_t>(size_), kMinPerThread, [&](int64_t b, int64_t e) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) w[i] -= lr * (g[i] + l2 * w[i]);
    });
  }
  std::vector<OptimizerStateArray> state() override { return {}; }

 private:
  DenseOptimizerOptions o_;
};

class Adagrad : public DenseOptimizer {
 public:
  Adagrad(const DenseOptimizerOptions& o, size_t size)
      : DenseOptimizer(size), o_(o), acc_(size, o.adagrad_initial_accumulator) {}

  void Step(float* w, const float* g) override {
    ++steps_;
    const float lr = o_.learning_rate, l2 = o_.l2, eps = o_.adagrad_eps;
    float* acc = acc_.data();
    ParallelFor(static_cast<int64_t>(size_), kMinPerThread, [&](int64_t b, int64_t e) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        const float gi = g[i] + l2 * w[i];
        acc[i] += gi * gi;
        w[i] -= lr * gi / (std::sqrt(acc[i]) + eps);
      }
    });
  }
  std::vector<OptimizerStateArray> state() override {
    return {{"adagrad.accumulator", acc_.data(), acc_.size()}};
  }

 private:
  DenseOptimizerOptions o_;
  std::vector<float> acc_;
};

class Adam : public DenseOptimizer {
 public:
  Adam(const DenseOptimizerOptions& o, size_t size)
      : DenseOptimizer(size), o_(o), m_(size, 0.0f), v_(size, 0.0f) {}

  void Step(float* w, const float* g) override {
    ++steps_;
    const double t = static_cast<double>(steps_);
    const double bc1 = 1.0 - std::pow(static_cast<double>(o_.adam_beta1), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(o_.adam_beta2), t);
    const float step_size = static_cast<float>(o_.learning_rate / bc1);
    const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    const float b1 = o_.adam_beta1, b2 = o_.adam_beta2, eps = o_.adam_eps, l2 = o_.l2;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    float* m = m_.data();
    float* v = v_.data();
    ParallelFor(static_cast<int64_t>(size_), kMinPerThread, [&](int64_t b, int64_t e) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        const float gi = g[i] + l2 * w[i];
        m[i] = b1 * m[i] + c1 * gi;
        v[i] = b2 * v[i] + c2 * gi * gi;
        w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
      }
    });
  }
  std::vector<OptimizerStateArray> state() override {
    return {{"adam.m", m_.data(), m_.size()}, {"adam.v", v_.data(), v_.size()}};
  }

 private:
  DenseOptimizerOptions o_;
  std::vector<float> m_, v_;
};

}  // namespace

Status DenseOptimizerOptions::Validate() const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("dense optimizer: " + m); };
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate))
    return bad("learning_rate = " + std::to_string(learning_rate) + ", expected > 0");
  if (!(l2 >= 0.0f) || !std::isfinite(l2))
    return bad("l2 = " + std::to_string(l2) + ", expected >= 0");
  if (type == Type::kAdam) {
    if (!(adam_beta1 >= 0.0f && adam_beta1 < 1.0f))
      return bad("adam_beta1 = " + std::to_string(adam_beta1) + ", expected [0, 1)");
    if (!(adam_beta2 >= 0.0f && adam_beta2 < 1.0f))
      return bad("adam_beta2 = " + std::to_string(adam_beta2) + ", expected [0, 1)");
    if (!(adam_eps > 0.0f)) return bad("adam_eps = " + std::to_string(adam_eps) + ", expected > 0");
  }
  if (type == Type::kAdagrad) {
    if (!(adagrad_initial_accumulator >= 0.0f))
      return bad("adagrad_initial_accumulator = " + std::to_string(adagrad_initial_accumulator) +
                 ", expected >= 0");
    if (!(adagrad_eps > 0.0f))
      return bad("adagrad_eps = " + std::to_string(adagrad_eps) + ", expected > 0");
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<DenseOptimizer>> NewDenseOptimizer(const DenseOptimizerOptions& options,
                                                            size_t size) {
  RETURN_IF_ERROR(options.Validate());
  switch (options.type) {
    case DenseOptimizerOptions::Type::kAdam:
      return std::unique_ptr<DenseOptimizer>(new Adam(options, size));
    case DenseOptimizerOptions::Type::kAdagrad:
      return std::unique_ptr<DenseOptimizer>(new Adagrad(options, size));
    case DenseOptimizerOptions::Type::kSgd:
      return std::unique_ptr<DenseOptimizer>(new Sgd(options, size));
  }
  return Status::InvalidArgument("dense optimizer: unknown type");
}

}  // namespace ctrps::worker
