#include "worker/nn/mlp.h"

#include <algorithm>

#include "common/check.h"
#include "worker/nn/rng.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

// Columns per thread below which the batch is not split.
constexpr int64_t kMinColumnsPerThread = 128;

// Columns [b0, b1) of a: a(:, b) = bias.
void BroadcastBias(const float* bias, int64_t b0, int64_t b1, MatrixF* a) {
  const Eigen::Map<const VectorF> b(bias, a->rows());
  a->middleCols(b0, b1 - b0).colwise() = b;
}

// Columns [b0, b1) of a: a = max(a, 0), times the dropout factor (0 or
// scale) when `drop`. The mask element index is the position in a, so the
// mask does not depend on how the batch is split.
void ReluDropout(int64_t b0, int64_t b1, bool drop, uint32_t key, uint32_t threshold, float scale,
                 MatrixF* a) {
  const int64_t rows = a->rows();
  float* p = a->data() + b0 * rows;
  const int64_t n = (b1 - b0) * rows;
  if (!drop) {
    for (int64_t i = 0; i < n; ++i) p[i] = std::max(p[i], 0.0f);
    return;
  }
  const uint32_t base = static_cast<uint32_t>(b0 * rows);
  for (int64_t i = 0; i < n; ++i) {
    const float keep = Mix32((base + static_cast<uint32_t>(i)) ^ key) >= threshold ? scale : 0.0f;
    p[i] = std::max(p[i], 0.0f) * keep;
  }
}

// Columns [b0, b1): turns dL/d(output of ReLU [+ dropout]) into
// dL/d(pre-activation) in place, using only the output a (a > 0 exactly where
// the unit was active and kept, and there the derivative is `scale`), and
// adds the row sums to bias_grad.
void ReluMaskAndBiasGrad(const MatrixF& a, float scale, int64_t b0, int64_t b1, MatrixF* d,
                         float* bias_grad) {
  const int64_t rows = a.rows();
  for (int64_t b = b0; b < b1; ++b) {
    const float* ap = a.data() + b * rows;
    float* dp = d->data() + b * rows;
    for (int64_t i = 0; i < rows; ++i) {
      const float g = ap[i] > 0.0f ? dp[i] * scale : 0.0f;
      dp[i] = g;
      bias_grad[i] += g;
    }
  }
}

// As ReluMaskAndBiasGrad, for d = w dz with w a column (in) and dz a row
// (1 x B): the gradient flowing out of a width-1 layer, never materialised.
void OuterReluMaskAndBiasGrad(const float* w, const MatrixF& dz, const MatrixF& a, float scale,
                              int64_t b0, int64_t b1, MatrixF* d, float* bias_grad) {
  const int64_t rows = a.rows();
  for (int64_t b = b0; b < b1; ++b) {
    const float* ap = a.data() + b * rows;
    float* dp = d->data() + b * rows;
    const float s = dz(0, b) * scale;
    for (int64_t i = 0; i < rows; ++i) {
      const float g = ap[i] > 0.0f ? w[i] * s : 0.0f;
      dp[i] = g;
      bias_grad[i] += g;
    }
  }
}

}  // namespace

Mlp::Mlp(DenseParamSet* params, const std::string& prefix, std::vector<int> dims, float dropout,
         uint64_t dropout_seed, bool relu_last, std::vector<MlpLayerRank> ranks)
    : dims_(std::move(dims)), dropout_(dropout), dropout_seed_(dropout_seed),
      relu_last_(relu_last) {
  CHECK_GE(dims_.size(), 2u) << prefix << ": an MLP needs input and output widths";
  CHECK(dropout >= 0.0f && dropout < 1.0f) << prefix << ": dropout " << dropout;
  const int num = static_cast<int>(dims_.size()) - 1;
  CHECK(ranks.empty() || static_cast<int>(ranks.size()) == num)
      << prefix << ": " << ranks.size() << " layer ranks for " << num << " layers";
  for (int l = 0; l < num; ++l) {
    const bool hidden = l + 1 < num;
    const bool relu = hidden || relu_last_;
    const Act act = hidden ? Act::kReluDropout : relu_last_ ? Act::kRelu : Act::kNone;
    const std::string name = prefix + "." + std::to_string(l);
    const MlpLayerRank r = ranks.empty() ? MlpLayerRank{} : ranks[l];
    CHECK_GE(r.rank, 0) << name;
    if (r.rank == 0) {
      layers_.emplace_back(params, name, dims_[l], dims_[l + 1],
                           relu ? ParamInit::He() : ParamInit::Xavier());
      names_.push_back(name);
      act_.push_back(act);
      stream_.push_back(l);
      continue;
    }
    layers_.emplace_back(params, name + ".a", dims_[l], r.rank,
                         r.relu ? ParamInit::He() : ParamInit::Xavier());
    names_.push_back(name + ".a");
    act_.push_back(r.relu ? Act::kRelu : Act::kNone);
    stream_.push_back(l);
    layers_.emplace_back(params, name + ".b", r.rank, dims_[l + 1],
                         relu ? ParamInit::He() : ParamInit::Xavier());
    names_.push_back(name + ".b");
    act_.push_back(act);
    stream_.push_back(l);
  }
  acts_.resize(layers_.size());
  grads_.resize(layers_.size());
}

double Mlp::FlopsPerExample() const {
  double f = 0;
  for (const Linear& layer : layers_) f += 2.0 * layer.in() * layer.out();
  return f;
}

int Mlp::Chunks(Eigen::Index batch) const {
  if (omp_in_parallel()) return 1;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(NumThreads(), batch / kMinColumnsPerThread)));
}

void Mlp::Forward(const MatrixF& x, bool training) { ForwardImpl(x, training, nullptr); }

void Mlp::ForwardFolded(const MatrixF& x, const MatrixF& w0) {
  CHECK(w0.rows() == layers_[0].out() && w0.cols() == x.rows())
      << "ForwardFolded: w0 is " << w0.rows() << " x " << w0.cols() << " for input rows "
      << x.rows() << ", expected " << layers_[0].out() << " outputs";
  ForwardImpl(x, /*training=*/false, &w0);
}

void Mlp::ForwardImpl(const MatrixF& x, bool training, const MatrixF* w0) {
  if (w0 == nullptr) CHECK_EQ(x.rows(), in_dim());
  last_folded_ = w0 != nullptr;
  serving_call_ = !training && !kernels_.empty();
  const Eigen::Index B = x.cols();
  const bool drop = training && dropout_ > 0.0f && dims_.size() > 2;
  const uint64_t call = drop ? dropout_calls_++ : 0;
  last_scale_ = drop ? 1.0f / (1.0f - dropout_) : 1.0f;
  for (int l = 0; l < num_layers(); ++l) acts_[l].resize(layers_[l].out(), B);
  const int chunks = taps_.empty() ? Chunks(B) : 1;
  if (chunks == 1) {
    ForwardColumns(x, 0, B, drop, call, w0);
    return;
  }
#pragma omp parallel num_threads(chunks)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    ForwardColumns(x, B * t / nt, B * (t + 1) / nt, drop, call, w0);
  }
}

void Mlp::ForwardColumns(const MatrixF& x, int64_t b0, int64_t b1, bool drop, uint64_t call,
                         const MatrixF* w0) {
  const int num = num_layers();
  const uint32_t threshold = DropoutThreshold(dropout_);
  const int64_t n = b1 - b0;
  for (int l = 0; l < num; ++l) {
    const Linear& layer = layers_[l];
    const MatrixF& in = l > 0 ? acts_[l - 1] : x;
    MatrixF& a = acts_[l];
    const LinearKernel* kernel =
        serving_call_ && !(l == 0 && w0 != nullptr) && l < static_cast<int>(kernels_.size())
            ? kernels_[l]
            : nullptr;
    if (kernel != nullptr) {  // serving: W x + b from the kernel's own weights
      kernel->Apply(in.data() + b0 * in.rows(), n, a.data() + b0 * a.rows());
    } else {
      BroadcastBias(layer.bias().data(), b0, b1, &a);
      if (l == 0 && w0 != nullptr) {
        a.middleCols(b0, n).noalias() += *w0 * in.middleCols(b0, n);
      } else {
        a.middleCols(b0, n).noalias() += layer.weight() * in.middleCols(b0, n);
      }
    }
    if (!taps_.empty() && taps_[l] != nullptr) *taps_[l] = a;
    if (act_[l] == Act::kReluDropout) {
      ReluDropout(b0, b1, drop, DropoutKey(dropout_seed_, stream_[l], call), threshold,
                  last_scale_, &a);
    } else if (act_[l] == Act::kRelu) {
      ReluDropout(b0, b1, false, 0, 0, 1.0f, &a);
    }
  }
}

void Mlp::Backward(const MatrixF& x, const MatrixF& dy, MatrixF* dx) {
  CHECK(!last_folded_) << "Mlp::Backward after ForwardFolded (a serving Forward)";
  const int num = num_layers();
  const Eigen::Index B = x.cols();
  CHECK(dy.rows() == out_dim() && dy.cols() == B && acts_[num - 1].cols() == B)
      << "Mlp::Backward: dy is " << dy.rows() << " x " << dy.cols() << ", expected "
      << out_dim() << " x " << B << " (after a Forward on the same batch)";
  for (int l = 0; l < num; ++l) grads_[l].resize(layers_[l].out(), B);
  if (dx != nullptr) dx->resize(in_dim(), B);
  const int chunks = Chunks(B);
  // Where each chunk puts its weight and bias gradients: chunk 0 into the
  // gradient buffer, chunk c > 0 into partial_[c - 1] (all layers back to back).
  grad_ptrs_.clear();
  size_t total = 0;
  for (const Linear& layer : layers_) {
    grad_ptrs_.push_back(layer.weight_grad().data());
    grad_ptrs_.push_back(layer.bias_grad().data());
    total += static_cast<size_t>(layer.out()) * (layer.in() + 1);
  }
  if (partial_.size() < static_cast<size_t>(chunks - 1)) partial_.resize(chunks - 1);
  chunk_grads_.assign(grad_ptrs_.begin(), grad_ptrs_.end());
  for (int c = 0; c + 1 < chunks; ++c) {
    partial_[c].resize(total);
    float* p = partial_[c].data();
    for (const Linear& layer : layers_) {
      chunk_grads_.push_back(p);
      p += static_cast<size_t>(layer.out()) * layer.in();
      chunk_grads_.push_back(p);
      std::fill_n(p, layer.out(), 0.0f);
      p += layer.out();
    }
  }
  if (chunks == 1) {
    BackwardColumns(x, dy, dx, 0, B, 0);
    return;
  }
#pragma omp parallel num_threads(chunks)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    BackwardColumns(x, dy, dx, B * t / nt, B * (t + 1) / nt, t);
#pragma omp barrier
    ReducePartials(t, nt);
  }
}

void Mlp::BackwardColumns(const MatrixF& x, const MatrixF& dy, MatrixF* dx, int64_t b0,
                          int64_t b1, int chunk) {
  const int num = num_layers();
  const int64_t n = b1 - b0;
  float* const* g = chunk_grads_.data() + static_cast<size_t>(chunk) * 2 * num;
  // The derivative factor of an active unit after linear map l.
  auto scale_of = [&](int l) { return act_[l] == Act::kReluDropout ? last_scale_ : 1.0f; };
  // dz: dL/d(pre-activation of linear map l), columns [b0, b1).
  const MatrixF* dz = &dy;
  if (act_[num - 1] != Act::kNone) {
    grads_[num - 1].middleCols(b0, n) = dy.middleCols(b0, n);
    ReluMaskAndBiasGrad(acts_[num - 1], scale_of(num - 1), b0, b1, &grads_[num - 1],
                        g[2 * num - 1]);
    dz = &grads_[num - 1];
  } else {
    Eigen::Map<VectorF>(g[2 * num - 1], out_dim()) += dy.middleCols(b0, n).rowwise().sum();
  }
  for (int l = num - 1; l >= 0; --l) {
    const Linear& layer = layers_[l];
    const MatrixF& in = l > 0 ? acts_[l - 1] : x;
    Eigen::Map<MatrixF> dw(g[2 * l], layer.out(), layer.in());
    if (chunk == 0) {
      dw.noalias() += dz->middleCols(b0, n) * in.middleCols(b0, n).transpose();
    } else {
      dw.noalias() = dz->middleCols(b0, n) * in.middleCols(b0, n).transpose();
    }
    if (l == 0) {
      if (dx != nullptr)
        dx->middleCols(b0, n).noalias() = layer.weight().transpose() * dz->middleCols(b0, n);
      break;
    }
    MatrixF& d = grads_[l - 1];
    float* bias_grad = g[2 * (l - 1) + 1];
    if (act_[l - 1] == Act::kNone) {
      // A low-rank layer's first half without ReLU: the gradient passes as is.
      d.middleCols(b0, n).noalias() = layer.weight().transpose() * dz->middleCols(b0, n);
      Eigen::Map<VectorF>(bias_grad, layer.in()) += d.middleCols(b0, n).rowwise().sum();
    } else if (layer.out() == 1) {
      // The logit layer: W^T dz is an outer product; fuse it into the mask.
      OuterReluMaskAndBiasGrad(layer.weight().data(), *dz, acts_[l - 1], scale_of(l - 1), b0, b1,
                               &d, bias_grad);
    } else {
      d.middleCols(b0, n).noalias() = layer.weight().transpose() * dz->middleCols(b0, n);
      ReluMaskAndBiasGrad(acts_[l - 1], scale_of(l - 1), b0, b1, &d, bias_grad);
    }
    dz = &d;
  }
}

void Mlp::ReducePartials(int chunk, int chunks) {
  // Thread `chunk` sums slice `chunk` of every gradient array.
  size_t off = 0;
  for (size_t k = 0; k < grad_ptrs_.size(); ++k) {
    const Linear& layer = layers_[k / 2];
    const size_t len = k % 2 == 0 ? static_cast<size_t>(layer.out()) * layer.in() : layer.out();
    const size_t s0 = len * chunk / chunks, s1 = len * (chunk + 1) / chunks;
    float* g = grad_ptrs_[k];
    for (int c = 0; c < chunks - 1; ++c) {
      const float* p = partial_[c].data() + off;
      for (size_t i = s0; i < s1; ++i) g[i] += p[i];
    }
    off += len;
  }
}

}  // namespace ctrps::worker
