#include "worker/nn/layers.h"

#include "common/check.h"
#include "worker/nn/rng.h"

namespace ctrps::worker {

Linear::Linear(DenseParamSet* params, const std::string& name, int in, int out,
               ParamInit weight_init)
    : params_(params), in_(in), out_(out) {
  w_ = params->Add(name + ".weight", out, in, weight_init);
  b_ = params->Add(name + ".bias", out, 1, ParamInit::Zero());
}

void Linear::Forward(const MatrixF& x, MatrixF* y) const {
  CHECK_EQ(x.rows(), in_);
  y->resize(out_, x.cols());
  // Start from the bias and let the product accumulate: Eigen's GEMM adds
  // into its destination anyway, so this replaces its zero fill.
  y->colwise() = bias().col(0);
  y->noalias() += weight() * x;
}

void Linear::Backward(const MatrixF& x, const MatrixF& dy, MatrixF* dx) const {
  CHECK_EQ(dy.rows(), out_);
  CHECK_EQ(dy.cols(), x.cols());
  weight_grad().noalias() += dy * x.transpose();
  bias_grad().col(0) += dy.rowwise().sum();
  if (dx != nullptr) dx->noalias() = weight().transpose() * dy;
}

void ReLU::Forward(const MatrixF& x, MatrixF* y) { *y = x.cwiseMax(0.0f); }

void ReLU::Backward(const MatrixF& y, const MatrixF& dy, MatrixF* dx) {
  CHECK(y.rows() == dy.rows() && y.cols() == dy.cols());
  *dx = (y.array() > 0.0f).select(dy.array(), 0.0f).matrix();
}

Dropout::Dropout(float rate, uint64_t seed, uint64_t stream)
    : rate_(rate), seed_(seed), stream_(stream) {
  CHECK(rate >= 0.0f && rate < 1.0f) << "dropout rate " << rate;
}

void Dropout::Forward(const MatrixF& x, bool training, MatrixF* y) {
  last_training_ = training && rate_ > 0.0f;
  if (!last_training_) {
    *y = x;
    return;
  }
  const uint32_t key = DropoutKey(seed_, stream_, calls_++);
  const uint32_t threshold = DropoutThreshold(rate_);
  const float scale = 1.0f / (1.0f - rate_);
  mask_.resize(x.rows(), x.cols());
  const Eigen::Index n = x.size();
  float* m = mask_.data();
  for (Eigen::Index i = 0; i < n; ++i)
    m[i] = Mix32(static_cast<uint32_t>(i) ^ key) >= threshold ? scale : 0.0f;
  *y = x.cwiseProduct(mask_);
}

void Dropout::Backward(const MatrixF& dy, MatrixF* dx) const {
  if (!last_training_) {
    *dx = dy;
    return;
  }
  CHECK(dy.rows() == mask_.rows() && dy.cols() == mask_.cols());
  *dx = dy.cwiseProduct(mask_);
}

}  // namespace ctrps::worker
