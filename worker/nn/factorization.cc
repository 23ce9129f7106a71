#include "worker/nn/factorization.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "worker/nn/dim_dispatch.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using internal::FieldVec;
using internal::kMaxDynamicDim;

constexpr int64_t kMinColumnsPerThread = 64;

// Examples [b0, b1): sums(:, b) = sum_i e_i, out(b) = (|sums|^2 - sum_i |e_i|^2) / 2.
template <int kD>
void FmForwardKernel(const MatrixF& x, int F, int d, int64_t b0, int64_t b1, MatrixF* sums,
                     VectorF* out) {
  using Vec = FieldVec<kD>;
  const int n = kD > 0 ? kD : d;
  for (int64_t b = b0; b < b1; ++b) {
    const float* e = x.data() + b * x.rows();
    Vec s = Vec::Zero(n), sq = Vec::Zero(n);
    for (int i = 0; i < F; ++i) {
      const Eigen::Map<const Vec> ei(e + i * n, n);
      s += ei;
      sq += ei.cwiseProduct(ei);
    }
    Eigen::Map<Vec>(sums->data() + b * n, n) = s;
    (*out)[b] = 0.5f * (s.squaredNorm() - sq.sum());
  }
}

// dx(e_i) += dout(b) (sums(:, b) - e_i).
template <int kD>
void FmBackwardKernel(const MatrixF& x, const MatrixF& sums, const VectorF& dout, int F, int d,
                      int64_t b0, int64_t b1, MatrixF* dx) {
  using Vec = FieldVec<kD>;
  const int n = kD > 0 ? kD : d;
  for (int64_t b = b0; b < b1; ++b) {
    const float* e = x.data() + b * x.rows();
    float* de = dx->data() + b * x.rows();
    const float g = dout[b];
    const Vec gs = g * Eigen::Map<const Vec>(sums.data() + b * n, n);
    for (int i = 0; i < F; ++i)
      Eigen::Map<Vec>(de + i * n, n) += gs - g * Eigen::Map<const Vec>(e + i * n, n);
  }
}

}  // namespace

void FmInteraction::Forward(const MatrixF& x, VectorF* out) {
  const int F = num_fields_, d = dim_;
  CHECK_EQ(x.rows(), static_cast<Eigen::Index>(F) * d);
  CHECK_LE(d, kMaxDynamicDim);
  const Eigen::Index B = x.cols();
  sums_.resize(d, B);
  out->resize(B);
  internal::DispatchDim(d, [&](auto dim) {
    ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
      FmForwardKernel<decltype(dim)::value>(x, F, d, b0, b1, &sums_, out);
    });
  });
}

void FmInteraction::Backward(const MatrixF& x, const VectorF& dout, MatrixF* dx) const {
  const int F = num_fields_, d = dim_;
  const Eigen::Index B = x.cols();
  CHECK(sums_.cols() == B && dout.size() == B && dx->rows() == x.rows() && dx->cols() == B);
  internal::DispatchDim(d, [&](auto dim) {
    ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
      FmBackwardKernel<decltype(dim)::value>(x, sums_, dout, F, d, b0, b1, dx);
    });
  });
}

FwFmInteraction::FwFmInteraction(DenseParamSet* params, const std::string& name, int num_fields,
                                 int dim)
    : params_(params), num_fields_(num_fields), dim_(dim) {
  // The scale of PyTorch's default Linear init, as in DeepLight's code.
  r_ = params->Add(name, num_fields, num_fields,
                   ParamInit::Uniform(1.0f / std::sqrt(static_cast<float>(num_fields))));
}

MatrixF FwFmInteraction::SymmetricR() const {
  const ConstMapF r = static_cast<const DenseParamSet*>(params_)->value(r_);
  MatrixF rs = 0.5f * (r + r.transpose());
  rs.diagonal().setZero();
  return rs;
}

double FwFmInteraction::FlopsPerExample() const {
  // G = E rs (2 F^2 d) and <E, G> (2 F d).
  return 2.0 * num_fields_ * num_fields_ * dim_ + 2.0 * num_fields_ * dim_;
}

namespace {

// Columns j0 .. j0 + kJ - 1 of g = e rs for one example, and their share of
// <e, g>; the kJ columns share each load of e_i.
template <int kD, int kJ>
inline void MixBlock(const float* e, const float* rs, int F, int n, int j0, float* g,
                     FieldVec<kD>* dot_acc) {
  using Vec = FieldVec<kD>;
  Vec acc[kJ];
  for (int jj = 0; jj < kJ; ++jj) acc[jj].setZero(n);
  for (int i = 0; i < F; ++i) {
    const Eigen::Map<const Vec> ei(e + i * n, n);
    for (int jj = 0; jj < kJ; ++jj) acc[jj] += rs[(j0 + jj) * F + i] * ei;
  }
  for (int jj = 0; jj < kJ; ++jj) {
    Eigen::Map<Vec>(g + (j0 + jj) * n, n) = acc[jj];
    *dot_acc += acc[jj].cwiseProduct(Eigen::Map<const Vec>(e + (j0 + jj) * n, n));
  }
}

// Example columns [b0, b1): mixed = E rs and out = <E, mixed> / 2 per example.
template <int kD>
void FwFmForwardKernel(const MatrixF& x, const MatrixF& rs, int F, int d, int64_t b0, int64_t b1,
                       MatrixF* mixed, VectorF* out) {
  const int n = kD > 0 ? kD : d;
  for (int64_t b = b0; b < b1; ++b) {
    const float* e = x.data() + b * x.rows();
    float* g = mixed->data() + b * x.rows();
    FieldVec<kD> dot_acc = FieldVec<kD>::Zero(n);
    int j = 0;
    for (; j + 4 <= F; j += 4) MixBlock<kD, 4>(e, rs.data(), F, n, j, g, &dot_acc);
    for (; j < F; ++j) MixBlock<kD, 1>(e, rs.data(), F, n, j, g, &dot_acc);
    (*out)[b] = 0.5f * dot_acc.sum();
  }
}

// acc[p d + k] += dout(b) e_i[k] e_j[k] over the pairs p = (i < j) in order,
// for examples [b0, b1). Four examples at a time share each load and store
// of an accumulator.
template <int kD>
void FwFmPairKernel(const MatrixF& x, const VectorF& dout, int F, int d, int64_t b0, int64_t b1,
                    float* acc) {
  using Vec = FieldVec<kD>;
  using CMap = Eigen::Map<const Vec>;
  const int n = kD > 0 ? kD : d;
  const int64_t D = x.rows();
  int64_t b = b0;
  for (; b + 4 <= b1; b += 4) {
    const float* e0 = x.data() + b * D;
    const float* e1 = e0 + D;
    const float* e2 = e1 + D;
    const float* e3 = e2 + D;
    float* a = acc;
    for (int i = 0; i < F; ++i) {
      const int oi = i * n;
      const Vec w0 = dout[b] * CMap(e0 + oi, n), w1 = dout[b + 1] * CMap(e1 + oi, n);
      const Vec w2 = dout[b + 2] * CMap(e2 + oi, n), w3 = dout[b + 3] * CMap(e3 + oi, n);
      for (int j = i + 1; j < F; ++j, a += n) {
        const int oj = j * n;
        Eigen::Map<Vec>(a, n) +=
            w0.cwiseProduct(CMap(e0 + oj, n)) + w1.cwiseProduct(CMap(e1 + oj, n)) +
            w2.cwiseProduct(CMap(e2 + oj, n)) + w3.cwiseProduct(CMap(e3 + oj, n));
      }
    }
  }
  for (; b < b1; ++b) {
    const float* e = x.data() + b * D;
    float* a = acc;
    for (int i = 0; i < F; ++i) {
      const Vec wi = dout[b] * CMap(e + i * n, n);
      for (int j = i + 1; j < F; ++j, a += n)
        Eigen::Map<Vec>(a, n) += wi.cwiseProduct(CMap(e + j * n, n));
    }
  }
}

}  // namespace

void FwFmInteraction::Forward(const MatrixF& x, VectorF* out) {
  const int F = num_fields_, d = dim_;
  CHECK_EQ(x.rows(), static_cast<Eigen::Index>(F) * d);
  CHECK_LE(d, kMaxDynamicDim);
  const Eigen::Index B = x.cols();
  const ConstMapF r = static_cast<const DenseParamSet*>(params_)->value(r_);
  rs_ = 0.5f * (r + r.transpose());
  rs_.diagonal().setZero();
  mixed_.resize(x.rows(), B);
  out->resize(B);
  x_ = &x;
  internal::DispatchDim(d, [&](auto dim) {
    ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
      FwFmForwardKernel<decltype(dim)::value>(x, rs_, F, d, b0, b1, &mixed_, out);
    });
  });
}

void FwFmInteraction::Backward(const VectorF& dout, MatrixF* dx) {
  const int F = num_fields_, d = dim_;
  const Eigen::Index B = dout.size();
  CHECK(x_ != nullptr && x_->cols() == B && mixed_.cols() == B && dx->rows() == x_->rows() &&
        dx->cols() == B)
      << "FwFmInteraction::Backward without a matching Forward";
  const MatrixF& x = *x_;
  // d out(b) / d E_b = G_b.
  ParallelFor(B, kMinColumnsPerThread, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) dx->col(b) += dout[b] * mixed_.col(b);
  });
  // d out / d rs_ij = sum_b dout(b) <e_i, e_j> for i < j, and rs_ij = (R_ij +
  // R_ji) / 2, so dR_ij = dR_ji = that / 2.
  const size_t acc_size = static_cast<size_t>(F) * (F - 1) / 2 * d;
  const int chunks = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(omp_in_parallel() ? 1 : NumThreads(), B / kMinColumnsPerThread)));
  if (static_cast<int>(pair_acc_.size()) < chunks) pair_acc_.resize(chunks);
  internal::DispatchDim(d, [&](auto dim) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1) if (chunks > 1)
    for (int c = 0; c < chunks; ++c) {
      std::vector<float>& acc = pair_acc_[c];
      acc.assign(acc_size, 0.0f);
      FwFmPairKernel<decltype(dim)::value>(x, dout, F, d, B * c / chunks, B * (c + 1) / chunks,
                                           acc.data());
    }
  });
  MapF dr = params_->grad(r_);
  size_t p = 0;
  for (int i = 0; i < F; ++i)
    for (int j = i + 1; j < F; ++j, p += d) {
      float s = 0;
      for (int c = 0; c < chunks; ++c)
        for (int k = 0; k < d; ++k) s += pair_acc_[c][p + k];
      dr(i, j) += 0.5f * s;
      dr(j, i) += 0.5f * s;
    }
}

}  // namespace ctrps::worker
