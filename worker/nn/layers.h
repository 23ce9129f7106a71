// Basic layers over batched activations: a matrix is features x batch,
// column-major, one column per example. Each layer owns no activation
// buffers; callers pass outputs that are resized in place (no allocation
// once the batch size is steady). Parameterised layers keep views into a
// DenseParamSet and add to its gradient buffer in Backward.
#pragma once

#include <cstdint>
#include <string>

#include "worker/nn/dense_params.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

// y = W x + b; W is out x in ("<name>.weight"), b is out ("<name>.bias").
class Linear {
 public:
  Linear() = default;
  Linear(DenseParamSet* params, const std::string& name, int in, int out, ParamInit weight_init);

  int in() const { return in_; }
  int out() const { return out_; }

  void Forward(const MatrixF& x, MatrixF* y) const;
  // dW += dy x^T, db += rowsum(dy); dx = W^T dy unless dx is null.
  void Backward(const MatrixF& x, const MatrixF& dy, MatrixF* dx) const;

  MapF weight() const { return params_->value(w_); }
  MapF bias() const { return params_->value(b_); }
  MapF weight_grad() const { return params_->grad(w_); }
  MapF bias_grad() const { return params_->grad(b_); }

 private:
  DenseParamSet* params_ = nullptr;
  int w_ = -1, b_ = -1;
  int in_ = 0, out_ = 0;
};

// y = max(x, 0). Backward needs only the output: dx = dy where y > 0.
struct ReLU {
  static void Forward(const MatrixF& x, MatrixF* y);
  static void Backward(const MatrixF& y, const MatrixF& dy, MatrixF* dx);
};

// Inverted dropout: in training y = x * m / (1 - rate) with m ~ Bernoulli(1 -
// rate) per element, else y = x. The mask of call c is a pure function of
// (seed, stream, c, element index), so runs are reproducible and a resumed
// run draws the same masks once set_calls restores the counter.
class Dropout {
 public:
  Dropout(float rate, uint64_t seed, uint64_t stream = 0);

  void Forward(const MatrixF& x, bool training, MatrixF* y);
  // dx = dy * m / (1 - rate), the mask of the last training Forward; dx = dy
  // after an eval Forward.
  void Backward(const MatrixF& dy, MatrixF* dx) const;

  uint64_t calls() const { return calls_; }
  void set_calls(uint64_t c) { calls_ = c; }
  float rate() const { return rate_; }

 private:
  float rate_;
  uint64_t seed_, stream_;
  uint64_t calls_ = 0;
  bool last_training_ = false;
  MatrixF mask_;  // 0 or 1 / (1 - rate)
};

}  // namespace ctrps::worker
