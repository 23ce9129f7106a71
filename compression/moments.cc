#include "compression/moments.h"

#include <cstring>

namespace ctrps::compression {

Moments::Moments(int dim) : sum_(Eigen::VectorXd::Zero(dim)), square_(Eigen::MatrixXd::Zero(dim, dim)) {}

void Moments::AddColumns(const worker::MatrixF& y, int n) {
  if (n <= 0) return;
  const Eigen::MatrixXd yd = y.leftCols(n).cast<double>();
  count_ += n;
  sum_ += yd.rowwise().sum();
  square_.selfadjointView<Eigen::Lower>().rankUpdate(yd);
}

void Moments::AddWeightedColumns(const worker::MatrixF& x, const std::vector<double>& weight) {
  const Eigen::Index u = x.cols();
  if (u == 0) return;
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::Map<const Eigen::VectorXd> w(weight.data(), u);
  count_ += w.sum();
  sum_.noalias() += xd * w;
  const Eigen::MatrixXd xw = xd * w.asDiagonal();
  square_.triangularView<Eigen::Lower>() += xw * xd.transpose();
}

void Moments::Merge(const Moments& other) {
  count_ += other.count_;
  sum_ += other.sum_;
  square_.triangularView<Eigen::Lower>() += other.square_;
}

Eigen::VectorXd Moments::Mean() const { return count_ > 0 ? Eigen::VectorXd(sum_ / count_) : sum_; }

Eigen::MatrixXd Moments::SecondMoment() const {
  return square_.selfadjointView<Eigen::Lower>();
}

Eigen::MatrixXd Moments::Covariance() const {
  const Eigen::VectorXd mu = Mean();
  Eigen::MatrixXd c = SecondMoment() / count_;
  c.noalias() -= mu * mu.transpose();
  return c;
}

size_t Moments::flat_size() const {
  const size_t d = sum_.size();
  return 1 + d + d * (d + 1) / 2;
}

void Moments::AppendFlat(std::vector<double>* out) const {
  out->push_back(count_);
  for (Eigen::Index i = 0; i < sum_.size(); ++i) out->push_back(sum_[i]);
  for (Eigen::Index j = 0; j < square_.cols(); ++j)
    for (Eigen::Index i = j; i < square_.rows(); ++i) out->push_back(square_(i, j));
}

void Moments::ReadFlat(const double* flat) {
  count_ = *flat++;
  for (Eigen::Index i = 0; i < sum_.size(); ++i) sum_[i] = *flat++;
  for (Eigen::Index j = 0; j < square_.cols(); ++j)
    for (Eigen::Index i = j; i < square_.rows(); ++i) square_(i, j) = *flat++;
}

Status CombineOverWorkers(std::vector<Moments*> all, ps::WorkerGroup* group,
                          const std::string& what) {
  if (group == nullptr || group->size() <= 1) return Status::OK();
  std::vector<double> mine;
  for (const Moments* m : all) m->AppendFlat(&mine);
  std::vector<char> bytes(mine.size() * sizeof(double));
  std::memcpy(bytes.data(), mine.data(), bytes.size());
  ASSIGN_OR_RETURN(auto gathered, group->Gather(std::move(bytes), what));
  std::vector<char> total;
  if (group->index() == 0) {
    std::vector<double> sum(mine.size(), 0.0);
    for (size_t w = 0; w < gathered.size(); ++w) {
      if (gathered[w].size() != sum.size() * sizeof(double))
        return Status::Corruption(what + ": worker " + std::to_string(w) + " sent " +
                                  std::to_string(gathered[w].size()) + " bytes, expected " +
                                  std::to_string(sum.size() * sizeof(double)));
      const double* p = reinterpret_cast<const double*>(gathered[w].data());
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += p[i];
    }
    total.resize(sum.size() * sizeof(double));
    std::memcpy(total.data(), sum.data(), total.size());
  }
  RETURN_IF_ERROR(group->Broadcast(&total, what));
  if (total.size() != mine.size() * sizeof(double))
    return Status::Corruption(what + ": the combined statistics have " +
                              std::to_string(total.size()) + " bytes");
  const double* p = reinterpret_cast<const double*>(total.data());
  for (Moments* m : all) {
    m->ReadFlat(p);
    p += m->flat_size();
  }
  return Status::OK();
}

}  // namespace ctrps::compression
