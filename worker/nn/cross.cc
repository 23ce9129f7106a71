#include "worker/nn/cross.h"

#include "common/check.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {
constexpr int64_t kMinColumnsPerThread = 64;
}  // namespace

CrossLayer::CrossLayer(DenseParamSet* params, const std::string& name, int dim, int rank)
    : params_(params), dim_(dim), rank_(rank) {
  CHECK(dim > 0 && rank >= 0) << name << ": dim " << dim << ", rank " << rank;
  if (rank == 0) {
    w_ = params->Add(name + ".weight", dim, dim, ParamInit::Xavier());
  } else {
    u_ = params->Add(name + ".u", dim, rank, ParamInit::Xavier());
    v_ = params->Add(name + ".v", dim, rank, ParamInit::Xavier());
  }
  b_ = params->Add(name + ".bias", dim, 1, ParamInit::Zero());
}

double CrossLayer::FlopsPerExample() const {
  const double matmul = rank_ == 0 ? 2.0 * dim_ * dim_ : 4.0 * dim_ * rank_;
  return matmul + 3.0 * dim_;  // bias, product with x0, residual
}

void CrossLayer::Forward(const MatrixF& x0, const MatrixF& xl, MatrixF* out) {
  CHECK(x0.rows() == dim_ && xl.rows() == dim_ && x0.cols() == xl.cols());
  const Eigen::Index B = xl.cols();
  z_.resize(dim_, B);
  out->resize(dim_, B);
  const MapF bias = params_->value(b_);
  ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
    z_.middleCols(b0, b1 - b0).colwise() = bias.col(0);
  });
  if (rank_ == 0) {
    z_.noalias() += params_->value(w_) * xl;
  } else {
    h_.noalias() = params_->value(v_).transpose() * xl;
    z_.noalias() += params_->value(u_) * h_;
  }
  ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    out->middleCols(b0, n) =
        x0.middleCols(b0, n).cwiseProduct(z_.middleCols(b0, n)) + xl.middleCols(b0, n);
  });
}

void CrossLayer::Backward(const MatrixF& x0, const MatrixF& xl, const MatrixF& dout, MatrixF* dx0,
                          MatrixF* dxl) {
  const Eigen::Index B = xl.cols();
  CHECK(dout.rows() == dim_ && dout.cols() == B && z_.cols() == B);
  CHECK(dx0->rows() == dim_ && dx0->cols() == B) << "dx0 must be sized (and accumulate)";
  CHECK(&dout != dxl && &dout != dx0 && dx0 != dxl) << "CrossLayer::Backward: aliased buffers";
  dz_.resize(dim_, B);
  dxl->resize(dim_, B);
  // One pass: dz = dout * x0, dx0 += dout * z, dxl = dout (the residual).
  ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    const auto d = dout.middleCols(b0, n);
    dz_.middleCols(b0, n) = d.cwiseProduct(x0.middleCols(b0, n));
    dx0->middleCols(b0, n) += d.cwiseProduct(z_.middleCols(b0, n));
    dxl->middleCols(b0, n) = d;
  });
  params_->grad(b_).col(0) += dz_.rowwise().sum();
  if (rank_ == 0) {
    params_->grad(w_).noalias() += dz_ * xl.transpose();
    dxl->noalias() += params_->value(w_).transpose() * dz_;
  } else {
    params_->grad(u_).noalias() += dz_ * h_.transpose();
    dh_.noalias() = params_->value(u_).transpose() * dz_;
    params_->grad(v_).noalias() += xl * dh_.transpose();
    dxl->noalias() += params_->value(v_) * dh_;
  }
}

}  // namespace ctrps::worker
