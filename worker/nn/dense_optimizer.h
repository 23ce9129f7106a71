// Optimizers of the dense parameters: one flat float array updated in place
// from its gradient (Model::dense_values / dense_grads), with the optimizer's
// state exposed as flat arrays of the same length for checkpoints.
// Thread-compatible; Step uses NumThreads() threads (worker/nn/threading.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"

namespace ctrps::worker {

struct DenseOptimizerOptions {
  enum class Type { kAdam, kAdagrad, kSgd };
  Type type = Type::kAdam;
  float learning_rate = 1e-3f;  // step size, > 0
  // L2 weight decay, added to the gradient before the update (g += l2 * w),
  // as PyTorch's weight_decay. >= 0.
  float l2 = 0.0f;
  // Adam (PyTorch semantics, bias-corrected): w -= lr * m_hat / (sqrt(v_hat) + eps).
  float adam_beta1 = 0.9f;   // [0, 1)
  float adam_beta2 = 0.999f; // [0, 1)
  float adam_eps = 1e-8f;    // > 0
  // Adagrad (PyTorch semantics): acc += g^2; w -= lr * g / (sqrt(acc) + eps).
  float adagrad_initial_accumulator = 0.0f;  // >= 0
  float adagrad_eps = 1e-10f;                // > 0

  Status Validate() const;
};

// One flat state array of an optimizer, `size` floats.
struct OptimizerStateArray {
  const char* name;  // "adam.m", "adam.v", "adagrad.accumulator"
  float* data;
  size_t size;
};

class DenseOptimizer {
 public:
  virtual ~DenseOptimizer() = default;

  // Applies one update to values (size() floats) from grads (size() floats).
  virtual void Step(float* values, const float* grads) = 0;

  // The state arrays (none for SGD). Writable, so a checkpoint can restore them.
  virtual std::vector<OptimizerStateArray> state() = 0;

  size_t size() const { return size_; }
  // Updates applied so far (Adam's bias correction uses it); part of the state.
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }

 protected:
  explicit DenseOptimizer(size_t size) : size_(size) {}
  size_t size_;
  int64_t steps_ = 0;
};

StatusOr<std::unique_ptr<DenseOptimizer>> NewDenseOptimizer(const DenseOptimizerOptions& options,
                                                            size_t size);

}  // namespace ctrps::worker
