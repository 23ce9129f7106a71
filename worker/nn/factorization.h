// Second-order field interactions over F equal-width field vectors stacked in
// each column of x (F * d x B; field i's vector e_i is rows [i d, (i+1) d)).
#pragma once

#include <string>
#include <vector>

#include "worker/nn/dense_params.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

// Factorization machine: out(b) = sum_{i<j} <e_i, e_j>, by the sum-square
// identity 0.5 (|sum_i e_i|^2 - sum_i |e_i|^2) in O(F d).
class FmInteraction {
 public:
  FmInteraction() = default;
  FmInteraction(int num_fields, int dim) : num_fields_(num_fields), dim_(dim) {}

  void Forward(const MatrixF& x, VectorF* out);
  // dx += dout(b) * (sum_j e_j - e_i) for each field i, for the x of the last
  // Forward.
  void Backward(const MatrixF& x, const VectorF& dout, MatrixF* dx) const;

  double FlopsPerExample() const { return 4.0 * num_fields_ * dim_; }

 private:
  int num_fields_ = 0, dim_ = 0;
  MatrixF sums_;  // d x B: sum_i e_i per example, kept for Backward
};

// Field-weighted FM (FwFM, and DeepLight's DeepFwFM):
//   out(b) = sum_{i<j} r_ij <e_i, e_j>,  r = (R + R^T) / 2 with zero diagonal,
// where R ("<name>", F x F) is a dense parameter. Only the symmetric,
// off-diagonal part of R matters; its gradient is symmetric with zero diagonal.
// Per example, G = E r (E = [e_1 .. e_F], d x F) gives out = <E, G> / 2 and
// d out / d E = G; the kernels keep G's columns in registers (d = 8, 16, 32
// and 64 are compiled for; other dims take a generic loop).
class FwFmInteraction {
 public:
  FwFmInteraction() = default;
  FwFmInteraction(DenseParamSet* params, const std::string& name, int num_fields, int dim);

  void Forward(const MatrixF& x, VectorF* out);
  // dx += d out / d x * dout, dR += d out / d R * dout, for the last Forward.
  void Backward(const VectorF& dout, MatrixF* dx);

  // (R + R^T) / 2 with the diagonal zeroed.
  MatrixF SymmetricR() const;
  double FlopsPerExample() const;

 private:
  DenseParamSet* params_ = nullptr;
  int r_ = -1;
  int num_fields_ = 0, dim_ = 0;
  const MatrixF* x_ = nullptr;  // input of the last Forward
  MatrixF rs_;     // F x F symmetrised R of the last Forward
  MatrixF mixed_;  // like x: column b holds G = E_b rs_
  // Per thread: d-wide accumulators of sum_b dout(b) e_i * e_j for i < j.
  std::vector<std::vector<float>> pair_acc_;
};

}  // namespace ctrps::worker
