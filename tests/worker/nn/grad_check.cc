#include "tests/worker/nn/grad_check.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "worker/nn/rng.h"

namespace ctrps::worker::testing {

MatrixF RandomMatrix(int rows, int cols, uint64_t seed, float scale) {
  SplitMix64 rng(seed);
  MatrixF m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.Uniform(-scale, scale);
  return m;
}

double Dot(const MatrixF& g, const MatrixF& y) {
  return g.cast<double>().cwiseProduct(y.cast<double>()).sum();
}

GradCheckResult CheckGradient(const std::string& what, float* param, const float* analytic,
                              size_t n, const std::function<double()>& loss,
                              const GradCheckOptions& options) {
  const std::vector<float> expected(analytic, analytic + n);
  GradCheckResult r;
  double worst_excess = 0;
  for (size_t i = 0; i < n; ++i) {
    const float saved = param[i];
    const float plus = saved + options.step, minus = saved - options.step;
    param[i] = plus;
    const double lp = loss();
    param[i] = minus;
    const double lm = loss();
    param[i] = saved;
    const double numeric = (lp - lm) / (static_cast<double>(plus) - static_cast<double>(minus));
    const double err = std::fabs(numeric - expected[i]);
    const double scale = std::max(std::fabs(numeric), std::fabs(double{expected[i]}));
    const double tol = options.abs_tol + options.rel_tol * scale;
    ++r.checked;
    r.max_abs_error = std::max(r.max_abs_error, err);
    if (err > tol && err - tol > worst_excess) {
      worst_excess = err - tol;
      r.ok = false;
      std::ostringstream os;
      os << what << "[" << i << "]: numeric " << numeric << ", analytic " << expected[i]
         << " (|diff| " << err << " > tol " << tol << ")";
      r.message = os.str();
    }
  }
  return r;
}

}  // namespace ctrps::worker::testing
