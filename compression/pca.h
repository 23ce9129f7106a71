// Symmetric eigendecompositions with eigenvalues in descending order, and
// the choice of a rank: fixed, or the smallest keeping a fraction of the
// variance (the trace).
#pragma once

#include <Eigen/Core>

#include "common/status.h"

namespace ctrps::compression {

struct Eigensystem {
  Eigen::VectorXd values;   // descending (negative rounding noise clamped to 0)
  Eigen::MatrixXd vectors;  // column i belongs to values[i]
};

// Of a symmetric matrix (only its lower triangle is read).
Eigensystem SymmetricEigen(const Eigen::MatrixXd& symmetric);

// How many leading components to keep: `rank` if > 0, else the smallest k
// whose values sum to at least `variance` of the total (variance in (0, 1]).
// At least 1, at most values.size().
int ChooseRank(const Eigen::VectorXd& values, int rank, double variance);

// Fraction of the total kept by the first k values (1 when the total is 0).
double KeptFraction(const Eigen::VectorXd& values, int k);

}  // namespace ctrps::compression
