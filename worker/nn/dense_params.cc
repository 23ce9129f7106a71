#include "worker/nn/dense_params.h"

#include <cmath>

#include "common/check.h"
#include "common/hash.h"
#include "worker/nn/rng.h"

namespace ctrps::worker {

int DenseParamSet::Add(const std::string& name, int rows, int cols, ParamInit init) {
  CHECK(values_.empty()) << "DenseParamSet::Add(" << name << ") after Allocate";
  CHECK(rows >= 0 && cols >= 0) << name << ": " << rows << " x " << cols;
  for (const auto& p : infos_) CHECK(p.name != name) << "duplicate dense parameter " << name;
  DenseParamInfo info;
  info.name = name;
  info.rows = rows;
  info.cols = cols;
  info.offset = size_;
  const size_t n = static_cast<size_t>(rows) * cols;
  size_ += (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  infos_.push_back(info);
  inits_.push_back(init);
  return static_cast<int>(infos_.size()) - 1;
}

void DenseParamSet::Allocate(uint64_t seed) {
  CHECK(values_.empty()) << "DenseParamSet::Allocate called twice";
  values_.assign(size_, 0.0f);
  grads_.assign(size_, 0.0f);
  for (size_t i = 0; i < infos_.size(); ++i) {
    const DenseParamInfo& p = infos_[i];
    const ParamInit& init = inits_[i];
    float bound = 0;
    switch (init.kind) {
      case ParamInit::Kind::kZero: bound = 0; break;
      case ParamInit::Kind::kUniform: bound = init.scale; break;
      case ParamInit::Kind::kXavierUniform:
        bound = std::sqrt(6.0f / std::max(1, p.rows + p.cols));
        break;
      case ParamInit::Kind::kHeUniform: bound = std::sqrt(6.0f / std::max(1, p.cols)); break;
    }
    if (bound == 0) continue;
    SplitMix64 rng(Mix64(seed) ^ HashString(p.name));
    float* v = values_.data() + p.offset;
    const size_t n = static_cast<size_t>(p.rows) * p.cols;
    for (size_t j = 0; j < n; ++j) v[j] = rng.Uniform(-bound, bound);
  }
}

MapF DenseParamSet::value(int id) {
  const DenseParamInfo& p = infos_[id];
  return MapF(values_.data() + p.offset, p.rows, p.cols);
}
MapF DenseParamSet::grad(int id) {
  const DenseParamInfo& p = infos_[id];
  return MapF(grads_.data() + p.offset, p.rows, p.cols);
}
ConstMapF DenseParamSet::value(int id) const {
  const DenseParamInfo& p = infos_[id];
  return ConstMapF(values_.data() + p.offset, p.rows, p.cols);
}
ConstMapF DenseParamSet::grad(int id) const {
  const DenseParamInfo& p = infos_[id];
  return ConstMapF(grads_.data() + p.offset, p.rows, p.cols);
}

}  // namespace ctrps::worker
