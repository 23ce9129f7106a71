// The dense parameters of a model in one flat value buffer and one flat
// gradient buffer, so optimizers, allreduce and checkpoints see one array.
// Layers register their parameters at construction, the model allocates once,
// and layers then read Eigen views into the buffers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "worker/nn/model.h"

namespace ctrps::worker {

using MapF = Eigen::Map<MatrixF, Eigen::Aligned64>;
using ConstMapF = Eigen::Map<const MatrixF, Eigen::Aligned64>;

struct ParamInit {
  enum class Kind {
    kZero,
    kUniform,        // U(-scale, scale)
    kXavierUniform,  // U(-a, a), a = sqrt(6 / (fan_in + fan_out)): linear outputs
    kHeUniform,      // U(-a, a), a = sqrt(6 / fan_in): layers followed by ReLU
  };
  Kind kind = Kind::kZero;
  float scale = 0;  // kUniform only

  static ParamInit Zero() { return {Kind::kZero, 0}; }
  static ParamInit Uniform(float s) { return {Kind::kUniform, s}; }
  static ParamInit Xavier() { return {Kind::kXavierUniform, 0}; }
  static ParamInit He() { return {Kind::kHeUniform, 0}; }
};

class DenseParamSet {
 public:
  // Each parameter starts on a multiple of kAlignFloats (64 bytes); the gaps
  // between parameters are zero in both buffers and stay zero under every
  // optimizer (zero gradient, zero weight).
  static constexpr size_t kAlignFloats = 16;

  DenseParamSet() = default;
  DenseParamSet(const DenseParamSet&) = delete;
  DenseParamSet& operator=(const DenseParamSet&) = delete;

  // Registers a rows x cols (column-major) parameter; fan_in = cols,
  // fan_out = rows. Only before Allocate. Returns the parameter's id.
  int Add(const std::string& name, int rows, int cols, ParamInit init);

  // Allocates both buffers, zeroes the gradients and initialises the values.
  // Each parameter draws from its own stream keyed by (seed, name), so adding
  // or reordering parameters leaves the others' initial values unchanged.
  void Allocate(uint64_t seed);

  MapF value(int id);
  MapF grad(int id);
  ConstMapF value(int id) const;
  ConstMapF grad(int id) const;

  const std::vector<DenseParamInfo>& infos() const { return infos_; }
  float* values() { return values_.data(); }
  float* grads() { return grads_.data(); }
  size_t size() const { return size_; }

 private:
  std::vector<DenseParamInfo> infos_;
  std::vector<ParamInit> inits_;
  size_t size_ = 0;
  std::vector<float, Eigen::aligned_allocator<float>> values_, grads_;
};

}  // namespace ctrps::worker
