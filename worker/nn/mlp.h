// A multi-layer perceptron over batched activations (features x batch), the
// hot loop of every deep model: one large GEMM per layer and pass, and one
// fused element-wise pass per layer each way (bias is folded into the GEMM's
// destination; ReLU, dropout and the bias gradient share a pass).
//
// dims = {in, h_1, ..., h_k, out}: layer l maps dims[l] -> dims[l + 1] and is
// named "<prefix>.<l>.weight" (dims[l+1] x dims[l]) and "<prefix>.<l>.bias".
// Hidden layers are followed by ReLU and, in training, inverted dropout; the
// last layer is linear unless relu_last (then ReLU, never dropout).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/dense_params.h"
#include "worker/nn/layers.h"

namespace ctrps::worker {

class Mlp {
 public:
  Mlp() = default;
  // dropout_seed keys the masks; hidden layer l uses stream l.
  Mlp(DenseParamSet* params, const std::string& prefix, std::vector<int> dims, float dropout,
      uint64_t dropout_seed, bool relu_last);

  // Computes output() = MLP(x) (dims.back() x B). Keeps the activations.
  void Forward(const MatrixF& x, bool training);
  const MatrixF& output() const { return acts_.back(); }

  // Given dL/d output() (dims.back() x B) for the x of the last Forward,
  // adds parameter gradients and writes dx = dL/dx unless dx is null.
  void Backward(const MatrixF& x, const MatrixF& dy, MatrixF* dx);

  int in_dim() const { return dims_.front(); }
  int out_dim() const { return dims_.back(); }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const Linear& layer(int l) const { return layers_[l]; }
  // Forward FLOPs per example (2 per multiply-add).
  double FlopsPerExample() const;

  uint64_t dropout_calls() const { return dropout_calls_; }
  void set_dropout_calls(uint64_t c) { dropout_calls_ = c; }

 private:
  std::vector<int> dims_;
  std::vector<Linear> layers_;
  float dropout_ = 0;
  uint64_t dropout_seed_ = 0;
  uint64_t dropout_calls_ = 0;
  bool relu_last_ = false;
  float last_scale_ = 1.0f;  // 1 / (1 - dropout) if the last Forward dropped
  std::vector<MatrixF> acts_;   // acts_[l]: output of layer l
  std::vector<MatrixF> grads_;  // grads_[l]: dL/d(pre-activation of layer l)

  // Multi-threading splits the batch: each thread runs every layer on its own
  // columns with single-threaded GEMMs (no synchronisation inside a pass),
  // thread 0 adds its weight gradients in place and thread t > 0 writes them
  // to partial_[t - 1], summed in after a barrier. Gradients are therefore
  // reproducible for a given thread count.
  int Chunks(Eigen::Index batch) const;
  void ForwardColumns(const MatrixF& x, int64_t b0, int64_t b1, bool drop, uint64_t call);
  void BackwardColumns(const MatrixF& x, const MatrixF& dy, MatrixF* dx, int64_t b0, int64_t b1,
                       int chunk);
  void ReducePartials(int chunk, int chunks);
  std::vector<float*> grad_ptrs_;   // per layer: weight gradient, then bias gradient
  std::vector<float*> chunk_grads_;  // [chunk][2 l + {0: weight, 1: bias}]: where a chunk adds
  std::vector<std::vector<float, Eigen::aligned_allocator<float>>> partial_;
};

}  // namespace ctrps::worker
