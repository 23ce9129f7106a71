#include "compression/pca.h"

#include <algorithm>

#include <Eigen/Eigenvalues>

namespace ctrps::compression {

Eigensystem SymmetricEigen(const Eigen::MatrixXd& symmetric) {
  const Eigen::MatrixXd full = symmetric.selfadjointView<Eigen::Lower>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(full);
  const Eigen::Index n = full.rows();
  Eigensystem e;
  e.values.resize(n);
  e.vectors.resize(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {  // Eigen's order is ascending
    e.values[i] = std::max(0.0, solver.eigenvalues()[n - 1 - i]);
    e.vectors.col(i) = solver.eigenvectors().col(n - 1 - i);
  }
  return e;
}

int ChooseRank(const Eigen::VectorXd& values, int rank, double variance) {
  const int n = static_cast<int>(values.size());
  if (rank > 0) return std::min(rank, n);
  const double total = values.sum();
  if (total <= 0) return 1;
  double kept = 0;
  for (int k = 1; k <= n; ++k) {
    kept += values[k - 1];
    if (kept >= variance * total) return k;
  }
  return n;
}

double KeptFraction(const Eigen::VectorXd& values, int k) {
  const double total = values.sum();
  return total > 0 ? values.head(k).sum() / total : 1.0;
}

}  // namespace ctrps::compression
