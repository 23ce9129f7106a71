#include "worker/nn/interaction.h"

#include "common/check.h"
#include "worker/nn/dim_dispatch.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

constexpr int64_t kMinColumnsPerThread = 32;

template <int kD>
void DotForwardKernel(const MatrixF& z, int n, int d, int64_t b0, int64_t b1, MatrixF* p) {
  using Vec = internal::FieldVec<kD>;
  const int m = kD > 0 ? kD : d;
  for (int64_t b = b0; b < b1; ++b) {
    const float* e = z.data() + b * z.rows();
    float* out = p->data() + b * p->rows();
    for (int i = 0; i < n; ++i) {
      const Vec ei = Eigen::Map<const Vec>(e + i * m, m);
      for (int j = i + 1; j < n; ++j) *out++ = ei.dot(Eigen::Map<const Vec>(e + j * m, m));
    }
  }
}

template <int kD>
void DotBackwardKernel(const MatrixF& z, const Eigen::Ref<const MatrixF>& dp, int n, int d,
                       int64_t b0, int64_t b1, MatrixF* dz) {
  using Vec = internal::FieldVec<kD>;
  const int m = kD > 0 ? kD : d;
  for (int64_t b = b0; b < b1; ++b) {
    const float* e = z.data() + b * z.rows();
    float* de = dz->data() + b * z.rows();
    const float* g = dp.data() + b * dp.outerStride();
    // dz_i = sum_{j != i} dp(i, j) z_j: row i of the symmetric pair matrix.
    for (int i = 0; i < n; ++i) {
      Vec acc = Vec::Zero(m);
      const Vec ei = Eigen::Map<const Vec>(e + i * m, m);
      for (int j = i + 1; j < n; ++j) {
        const float gq = *g++;
        acc += gq * Eigen::Map<const Vec>(e + j * m, m);
        Eigen::Map<Vec>(de + j * m, m) += gq * ei;
      }
      Eigen::Map<Vec>(de + i * m, m) += acc;
    }
  }
}

}  // namespace

void DotInteraction::Forward(const MatrixF& z, MatrixF* p) const {
  CHECK_EQ(z.rows(), static_cast<Eigen::Index>(n_) * dim_);
  CHECK_LE(dim_, internal::kMaxDynamicDim);
  const Eigen::Index B = z.cols();
  p->resize(num_pairs(), B);
  internal::DispatchDim(dim_, [&](auto dim) {
    ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
      DotForwardKernel<decltype(dim)::value>(z, n_, dim_, b0, b1, p);
    });
  });
}

void DotInteraction::Backward(const MatrixF& z, const Eigen::Ref<const MatrixF>& dp,
                              MatrixF* dz) const {
  const Eigen::Index B = z.cols();
  CHECK(dp.rows() == num_pairs() && dp.cols() == B);
  dz->setZero(z.rows(), B);
  internal::DispatchDim(dim_, [&](auto dim) {
    ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
      DotBackwardKernel<decltype(dim)::value>(z, dp, n_, dim_, b0, b1, dz);
    });
  });
}

}  // namespace ctrps::worker
