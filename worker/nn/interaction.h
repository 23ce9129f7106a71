// DLRM's feature interaction over n vectors of width d stacked in each column
// of z (n d x B; vector i is rows [i d, (i+1) d)).
#pragma once

#include "worker/nn/model.h"

namespace ctrps::worker {

// p(q, b) = <z_i, z_j> for every pair i < j, q enumerating the pairs by i,
// then j: (0,1), (0,2), ..., (0,n-1), (1,2), ... ("upper triangle").
class DotInteraction {
 public:
  DotInteraction() = default;
  DotInteraction(int n, int dim) : n_(n), dim_(dim) {}

  int num_pairs() const { return n_ * (n_ - 1) / 2; }
  void Forward(const MatrixF& z, MatrixF* p) const;
  // dz = sum over pairs q = (i, j) of dp(q) * (z_j into block i, z_i into block j).
  void Backward(const MatrixF& z, const Eigen::Ref<const MatrixF>& dp, MatrixF* dz) const;
  double FlopsPerExample() const { return 2.0 * num_pairs() * dim_; }

 private:
  int n_ = 0, dim_ = 0;
};

}  // namespace ctrps::worker
