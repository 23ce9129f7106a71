#include "ps/sparse_optimizer.h"

#include <cmath>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CTRPS_SPARSE_OPT_AVX2 1
#endif

namespace ctrps::ps {
namespace {

// The vector paths below compute exactly what the scalar loops compute (the
// same operations in the same order, with the same fused multiply-adds the
// compiler forms for the scalar code under -ffp-contract=fast; sqrt and
// division are correctly rounded in both), so results are bit-identical;
// ps tests compare a distributed run with a local one bit for bit. The
// scalar loops do not vectorize by themselves: std::sqrt must set errno.

class SgdOptimizer final : public SparseOptimizer {
 public:
  explicit SgdOptimizer(const SparseOptimizerOptions& o) : o_(o) {}
  int SlotFloats(int) const override { return 0; }
  void ResetEntry(float*, int, int) const override {}
  void ConfigureInit(storage::RowInitOptions*) const override {}
  void Apply(float* w, const float* g, int dim) const override {
    for (int i = 0; i < dim; ++i) w[i] -= o_.learning_rate * (g[i] + o_.l2 * w[i]);
  }

 private:
  SparseOptimizerOptions o_;
};

class AdagradOptimizer final : public SparseOptimizer {
 public:
  explicit AdagradOptimizer(const SparseOptimizerOptions& o) : o_(o) {}
  int SlotFloats(int dim) const override { return dim; }
  void ResetEntry(float* row, int dim, int i) const override { row[dim + i] = o_.adagrad_initial_acc; }
  void ConfigureInit(storage::RowInitOptions* init) const override {
    init->slot_value = o_.adagrad_initial_acc;
    init->slot_value_count = -1;
  }
  void Apply(float* w, const float* g, int dim) const override {
    float* acc = w + dim;
    int i = 0;
#ifdef CTRPS_SPARSE_OPT_AVX2
    const __m256 l2 = _mm256_set1_ps(o_.l2), lr = _mm256_set1_ps(o_.learning_rate),
                 eps = _mm256_set1_ps(o_.adagrad_eps);
    for (; i + 8 <= dim; i += 8) {
      const __m256 wi = _mm256_loadu_ps(w + i);
      const __m256 gi = _mm256_fmadd_ps(l2, wi, _mm256_loadu_ps(g + i));
      const __m256 a = _mm256_fmadd_ps(gi, gi, _mm256_loadu_ps(acc + i));
      _mm256_storeu_ps(acc + i, a);
      const __m256 d = _mm256_div_ps(_mm256_mul_ps(lr, gi), _mm256_add_ps(_mm256_sqrt_ps(a), eps));
      _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, d));
    }
#endif
    for (; i < dim; ++i) {
      float gi = g[i] + o_.l2 * w[i];
      acc[i] += gi * gi;
      w[i] -= o_.learning_rate * gi / (std::sqrt(acc[i]) + o_.adagrad_eps);
    }
  }

 private:
  SparseOptimizerOptions o_;
};

class AdamOptimizer final : public SparseOptimizer {
 public:
  explicit AdamOptimizer(const SparseOptimizerOptions& o) : o_(o) {}
  int SlotFloats(int dim) const override { return 2 * dim + 1; }
  void ResetEntry(float* row, int dim, int i) const override { row[dim + i] = row[2 * dim + i] = 0.0f; }
  void ConfigureInit(storage::RowInitOptions*) const override {}
  void Apply(float* w, const float* g, int dim) const override {
    float* m = w + dim;
    float* v = w + 2 * dim;
    float& t = w[3 * dim];
    t += 1.0f;
    const float b1 = o_.adam_beta1, b2 = o_.adam_beta2;
    float step, eps;
    if (t >= 1.0f && t <= kTableSteps && t == static_cast<float>(static_cast<int>(t))) {
      const Correction& c = table_[static_cast<int>(t)];
      step = c.step;
      eps = c.eps;
    } else {
      Correct(t, &step, &eps);
    }
    int i = 0;
#ifdef CTRPS_SPARSE_OPT_AVX2
    const __m256 l2 = _mm256_set1_ps(o_.l2), vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2),
                 nb1 = _mm256_set1_ps(1 - b1), nb2 = _mm256_set1_ps(1 - b2),
                 vstep = _mm256_set1_ps(step), veps = _mm256_set1_ps(eps);
    for (; i + 8 <= dim; i += 8) {
      const __m256 wi = _mm256_loadu_ps(w + i);
      const __m256 gi = _mm256_fmadd_ps(l2, wi, _mm256_loadu_ps(g + i));
      const __m256 mi = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + i), _mm256_mul_ps(nb1, gi));
      const __m256 vi =
          _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + i), _mm256_mul_ps(_mm256_mul_ps(nb2, gi), gi));
      _mm256_storeu_ps(m + i, mi);
      _mm256_storeu_ps(v + i, vi);
      const __m256 d =
          _mm256_div_ps(_mm256_mul_ps(vstep, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), veps));
      _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, d));
    }
#endif
    for (; i < dim; ++i) {
      float gi = g[i] + o_.l2 * w[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      w[i] -= step * m[i] / (std::sqrt(v[i]) + eps);
    }
  }

 private:
  // The bias correction of update t: two powf per row update otherwise.
  // Precomputed for the first kTableSteps updates of a row (most rows;
  // hot rows go past it and compute it), by the same expressions.
  static constexpr int kTableSteps = 4096;
  struct Correction {
    float step, eps;
  };
  void Correct(float t, float* step, float* eps) const {
    const float b1 = o_.adam_beta1, b2 = o_.adam_beta2;
    const float c1 = 1.0f - std::pow(b1, t), c2 = 1.0f - std::pow(b2, t);
    *step = o_.learning_rate * std::sqrt(c2) / c1;
    *eps = o_.adam_eps * std::sqrt(c2);
  }
  std::vector<Correction> MakeTable() const {
    std::vector<Correction> table(kTableSteps + 1);
    for (int t = 1; t <= kTableSteps; ++t)
      Correct(static_cast<float>(t), &table[t].step, &table[t].eps);
    return table;
  }

  SparseOptimizerOptions o_;
  std::vector<Correction> table_ = MakeTable();
};

// FTRL-Proximal (McMahan et al., 2013), per coordinate.
class FtrlOptimizer final : public SparseOptimizer {
 public:
  explicit FtrlOptimizer(const SparseOptimizerOptions& o) : o_(o) {}
  int SlotFloats(int dim) const override { return 2 * dim; }
  void ResetEntry(float* row, int dim, int i) const override { row[dim + i] = row[2 * dim + i] = 0.0f; }
  // z starts where the closed form below (n = 0) gives the row's initial
  // value back; with z = 0 the first update set w from the gradient alone,
  // wiping the initial embedding (FM with FTRL trained like LR).
  void ConfigureInit(storage::RowInitOptions* init) const override {
    init->z_scale = (o_.ftrl_beta + std::sqrt(0.0f)) / o_.ftrl_alpha + o_.ftrl_l2;
    init->z_offset = o_.ftrl_l1;
  }
  void Apply(float* w, const float* g, int dim) const override {
    float* z = w + dim;
    float* n = w + 2 * dim;
    for (int i = 0; i < dim; ++i) {
      float gi = g[i];
      float n_new = n[i] + gi * gi;
      float sigma = (std::sqrt(n_new) - std::sqrt(n[i])) / o_.ftrl_alpha;
      z[i] += gi - sigma * w[i];
      n[i] = n_new;
      float az = std::fabs(z[i]);
      if (az <= o_.ftrl_l1) {
        w[i] = 0.0f;
      } else {
        float sign = z[i] > 0 ? 1.0f : -1.0f;
        w[i] = -(z[i] - sign * o_.ftrl_l1) /
               ((o_.ftrl_beta + std::sqrt(n[i])) / o_.ftrl_alpha + o_.ftrl_l2);
      }
    }
  }

 private:
  SparseOptimizerOptions o_;
};

}  // namespace

const char* SparseOptimizerName(SparseOptimizerType t) {
  switch (t) {
    case SparseOptimizerType::kSGD: return "sgd";
    case SparseOptimizerType::kAdagrad: return "adagrad";
    case SparseOptimizerType::kAdam: return "adam";
    case SparseOptimizerType::kFTRL: return "ftrl";
  }
  return "?";
}

StatusOr<SparseOptimizerType> ParseSparseOptimizer(const std::string& name) {
  for (auto t : {SparseOptimizerType::kSGD, SparseOptimizerType::kAdagrad,
                 SparseOptimizerType::kAdam, SparseOptimizerType::kFTRL})
    if (name == SparseOptimizerName(t)) return t;
  return Status::InvalidArgument("unknown sparse optimizer '" + name +
                                 "' (expected sgd, adagrad, adam or ftrl)");
}

Status SparseOptimizerOptions::Validate() const {
  auto positive = [](float v, const char* name) -> Status {
    if (!(v > 0) || !std::isfinite(v))
      return Status::InvalidArgument(std::string("sparse optimizer ") + name +
                                     " must be > 0, got " + std::to_string(v));
    return Status::OK();
  };
  auto nonneg = [](float v, const char* name) -> Status {
    if (!(v >= 0) || !std::isfinite(v))
      return Status::InvalidArgument(std::string("sparse optimizer ") + name +
                                     " must be >= 0, got " + std::to_string(v));
    return Status::OK();
  };
  RETURN_IF_ERROR(positive(learning_rate, "learning_rate"));
  RETURN_IF_ERROR(nonneg(l2, "l2"));
  RETURN_IF_ERROR(nonneg(adagrad_initial_acc, "adagrad_initial_acc"));
  if (!(adam_beta1 >= 0 && adam_beta1 < 1) || !(adam_beta2 >= 0 && adam_beta2 < 1))
    return Status::InvalidArgument("sparse optimizer adam betas must be in [0, 1)");
  RETURN_IF_ERROR(positive(adam_eps, "adam_eps"));
  RETURN_IF_ERROR(positive(ftrl_alpha, "ftrl_alpha"));
  RETURN_IF_ERROR(nonneg(ftrl_beta, "ftrl_beta"));
  RETURN_IF_ERROR(nonneg(ftrl_l1, "ftrl_l1"));
  RETURN_IF_ERROR(nonneg(ftrl_l2, "ftrl_l2"));
  return Status::OK();
}

StatusOr<std::unique_ptr<SparseOptimizer>> NewSparseOptimizer(const SparseOptimizerOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  switch (opt.type) {
    case SparseOptimizerType::kSGD: return std::unique_ptr<SparseOptimizer>(new SgdOptimizer(opt));
    case SparseOptimizerType::kAdagrad:
      return std::unique_ptr<SparseOptimizer>(new AdagradOptimizer(opt));
    case SparseOptimizerType::kAdam: return std::unique_ptr<SparseOptimizer>(new AdamOptimizer(opt));
    case SparseOptimizerType::kFTRL: return std::unique_ptr<SparseOptimizer>(new FtrlOptimizer(opt));
  }
  return Status::InvalidArgument("bad sparse optimizer type");
}

}  // namespace ctrps::ps
