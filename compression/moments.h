// Float64 first and second moments of vectors, the statistics AFM needs
// (COMPRESSION.md section 2): N, s = sum x, S = sum x x^T over observations,
// then mean s / N and population covariance S / N - mean mean^T.
// Sums run in observation order, so a fixed data order gives fixed bits;
// across workers they are combined in worker order (CombineOverWorkers).
#pragma once

#include <vector>

#include <Eigen/Core>

#include "common/status.h"
#include "ps/worker_group.h"
#include "worker/nn/model.h"

namespace ctrps::compression {

class Moments {
 public:
  Moments() = default;
  explicit Moments(int dim);

  int dim() const { return static_cast<int>(sum_.size()); }
  double count() const { return count_; }

  // Columns [0, n) of y (dim x B), one observation each.
  void AddColumns(const worker::MatrixF& y, int n);
  // Columns of x (dim x U), column u observed weight[u] times.
  void AddWeightedColumns(const worker::MatrixF& x, const std::vector<double>& weight);
  // Adds another set of sums of the same dim.
  void Merge(const Moments& other);

  Eigen::VectorXd Mean() const;
  // Population covariance, symmetric. Needs count() > 0.
  Eigen::MatrixXd Covariance() const;
  // Uncentred second moment sum x x^T (symmetric), for weight bases.
  Eigen::MatrixXd SecondMoment() const;

  // Flat form for collectives: count, sum, then the lower triangle of S.
  size_t flat_size() const;
  void AppendFlat(std::vector<double>* out) const;
  // Replaces the sums by those at flat[0, flat_size()).
  void ReadFlat(const double* flat);

 private:
  double count_ = 0;
  Eigen::VectorXd sum_;
  Eigen::MatrixXd square_;  // lower triangle accumulated
};

// Sums every moment of `all` over the workers of `group` in worker order
// (worker 0 adds, then sends the totals to all): afterwards every worker
// holds the same bits. A null group or one worker changes nothing.
[[nodiscard]] Status CombineOverWorkers(std::vector<Moments*> all, ps::WorkerGroup* group,
                                        const std::string& what);

}  // namespace ctrps::compression
