// A multi-layer perceptron over batched activations (features x batch), the
// hot loop of every deep model: one large GEMM per layer and pass, and one
// fused element-wise pass per layer each way (bias is folded into the GEMM's
// destination; ReLU, dropout and the bias gradient share a pass).
//
// dims = {in, h_1, ..., h_k, out}: layer l maps dims[l] -> dims[l + 1] and is
// named "<prefix>.<l>.weight" (dims[l+1] x dims[l]) and "<prefix>.<l>.bias".
// Hidden layers are followed by ReLU and, in training, inverted dropout; the
// last layer is linear unless relu_last (then ReLU, never dropout).
//
// Low-rank layers (AFM, COMPRESSION.md section 2): layer l with rank k > 0 is
// two thin layers, "<prefix>.<l>.a" (dims[l] -> k) and "<prefix>.<l>.b"
// (k -> dims[l+1]), optionally with a ReLU between them (the "act"
// variant; never dropout there); layer l's own activation and dropout
// follow the second one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/nn/dense_params.h"
#include "worker/nn/layers.h"

namespace ctrps::worker {

// Serving: one linear map computed from weights held elsewhere (a pruned
// layer's sparse form, worker/serve/sparse_engine.h). Apply writes
// y(:, b) = W x(:, b) + bias for the n columns (x in x n, y out x n,
// column-major, contiguous), no activation. Not used in training.
class LinearKernel {
 public:
  virtual ~LinearKernel() = default;
  virtual void Apply(const float* x, int64_t n, float* y) const = 0;
};

// How layer l of an MLP is built: full (rank 0) or low rank.
struct MlpLayerRank {
  int rank = 0;       // 0: one dims[l+1] x dims[l] layer; k > 0: two thin layers through k
  bool relu = false;  // low rank only: a ReLU between the two thin layers
};

class Mlp {
 public:
  Mlp() = default;
  // dropout_seed keys the masks; hidden layer l uses stream l. ranks: empty
  // (every layer full) or one entry per layer.
  Mlp(DenseParamSet* params, const std::string& prefix, std::vector<int> dims, float dropout,
      uint64_t dropout_seed, bool relu_last, std::vector<MlpLayerRank> ranks = {});

  // Computes output() = MLP(x) (dims.back() x B). Keeps the activations.
  void Forward(const MatrixF& x, bool training);
  const MatrixF& output() const { return acts_.back(); }
  // Inference with linear map 0 reading x (w0.cols() x B) through w0, its
  // bias kept, instead of reading the MLP's input through its own weight
  // (Model::PrepareForServing's folded decoders). Backward refuses to
  // follow it.
  void ForwardFolded(const MatrixF& x, const MatrixF& w0);

  // Given dL/d output() (dims.back() x B) for the x of the last Forward,
  // adds parameter gradients and writes dx = dL/dx unless dx is null.
  void Backward(const MatrixF& x, const MatrixF& dy, MatrixF* dx);

  int in_dim() const { return dims_.front(); }
  int out_dim() const { return dims_.back(); }
  // Linear maps, low-rank layers counting as two ("<prefix>.<l>.a", ".b").
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const Linear& layer(int l) const { return layers_[l]; }
  const std::string& layer_name(int l) const { return names_[l]; }

  // Statistics taps (compression): while set, Forward copies the
  // pre-activation output of linear map l (dims x B) into *taps[l] (null:
  // not tapped). Single-threaded Forward only. Empty vector: none.
  void SetTaps(std::vector<MatrixF*> taps) { taps_ = std::move(taps); }
  // Serving kernels: while set, an inference Forward computes linear map l
  // with kernels[l] (null: its own GEMM) instead of its weight, except a
  // folded first layer (ForwardFolded). Empty vector: none.
  void SetServingKernels(std::vector<const LinearKernel*> kernels) {
    kernels_ = std::move(kernels);
  }
  // Forward FLOPs per example (2 per multiply-add).
  double FlopsPerExample() const;

  uint64_t dropout_calls() const { return dropout_calls_; }
  void set_dropout_calls(uint64_t c) { dropout_calls_ = c; }

 private:
  enum class Act : uint8_t { kNone, kRelu, kReluDropout };
  std::vector<int> dims_;
  std::vector<Linear> layers_;
  std::vector<std::string> names_;
  std::vector<Act> act_;          // per linear map: what follows it
  std::vector<int> stream_;       // per linear map: its dropout stream (the layer index)
  std::vector<MatrixF*> taps_;
  std::vector<const LinearKernel*> kernels_;
  bool serving_call_ = false;  // the current Forward is an inference one
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
  void ForwardImpl(const MatrixF& x, bool training, const MatrixF* w0);
  void ForwardColumns(const MatrixF& x, int64_t b0, int64_t b1, bool drop, uint64_t call,
                      const MatrixF* w0);
  bool last_folded_ = false;  // the last Forward was ForwardFolded
  void BackwardColumns(const MatrixF& x, const MatrixF& dy, MatrixF* dx, int64_t b0, int64_t b1,
                       int chunk);
  void ReducePartials(int chunk, int chunks);
  std::vector<float*> grad_ptrs_;   // per layer: weight gradient, then bias gradient
  std::vector<float*> chunk_grads_;  // [chunk][2 l + {0: weight, 1: bias}]: where a chunk adds
  std::vector<std::vector<float, Eigen::aligned_allocator<float>>> partial_;
};

}  // namespace ctrps::worker
