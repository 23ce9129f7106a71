// The sparse inference path of pruned factor-family models (DeepLight,
// COMPRESSION.md section 3): LR, FM, FwFM, DeepFM and DeepFwFM without
// compressed structure, scored straight from the bundle's weights:
//   logit = bias + sum_f v_f w_f + [FM | FwFM over the surviving pairs] + MLP(x),
// x the value-scaled embeddings. FwFM runs over the pairs whose
// r_ij = (R_ij + R_ji) / 2 is non-zero only; each MLP layer runs sparse or
// dense by its density, separately for one example (SELL SpMV below
// kSingleRowMaxDensity) and for tiles of kSparseTile examples (CSR SpMM
// below kTileMaxDensity); the thresholds are where the kernels cross over
// on the DeepFwFM shapes (bench/inference_bench --sparse measures them).
//
// One example runs the MLP after FoldDeadNeurons (mlp_fold.h): hidden
// neurons with no non-zero weight in or out are dropped, their constants
// folded into the next layer's bias.
//
// Built once per bundle and shared by forked engines; each engine owns a
// Scratch (sized at construction, so scoring allocates nothing).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "worker/nn/mlp.h"
#include "worker/serve/bundle.h"
#include "worker/serve/sparse_kernels.h"

namespace ctrps::worker::serve {

// A layer runs sparse for one example at or below this density, else dense.
inline constexpr double kSingleRowMaxDensity = 0.10;
// A layer runs sparse for a tile of examples at or below this density.
inline constexpr double kTileMaxDensity = 0.5;

class SparseFactorPath {
 public:
  // Null unless the bundle's model is LR, FM, FwFM, DeepFM or DeepFwFM
  // without decoders or low-rank layers. m.dense holds every tensor.
  static std::unique_ptr<SparseFactorPath> Build(const BundleManifest& m);

  int num_fields() const { return F_; }
  int row_width() const { return W_; }
  // One example's rows are this far apart (W rounded up to 8 floats; what
  // lies past W in each is ignored).
  int row_stride() const { return RS_; }

  // Per-engine buffers.
  struct Scratch {
    std::vector<float> x, h0, h1, scratch;              // one example
    std::vector<float> tx, th0, th1, tacc, tlin;        // one tile (feature-major)
  };
  void InitScratch(Scratch* s) const;

  // One example: rows holds field f's row at [f S, f S + W), S = row_stride(),
  // values[f] its value; rows has 8 floats more after the last row (read,
  // ignored).
  float Row(const float* rows, const float* values, Scratch* s) const;
  // n <= kSparseTile examples: example t's rows at rows + t F W, values + t F.
  void Tile(const float* rows, const float* values, int n, Scratch* s, float* logits) const;

  // One line per part: pairs kept, each layer's density and kernels.
  std::string Describe() const;
  // Stored non-zeros of the MLP weights (for reports).
  uint64_t mlp_nnz() const;

 private:
  struct Layer {
    std::string name;
    int in = 0, out = 0;
    bool relu = false;
    std::vector<float> bias, dense;  // dense: column-major out x in
    std::vector<float> dense_row;    // one example: dense with columns in the input's order
    // One example: the layer after FoldDeadNeurons (mlp_fold.h): its kept
    // outputs, their biases (constants of dropped inputs folded in), its
    // columns (layer 0: F Dp).
    int row_out = 0, row_in = 0;
    std::vector<float> row_bias;
    CsrMatrix csr;
    SellMatrix sell;
    bool sparse_row = false, sparse_tile = false;
  };
  enum class Pair { kNone, kFm, kFwFm };
  ModelType type_ = ModelType::kLR;
  // One example: x holds field f's value-scaled embedding at [f Dp, f Dp + d),
  // zeros up to (f + 1) Dp (Dp: d rounded up to 8), so FwFM runs in whole
  // 8-float vectors; the first MLP layer's columns are numbered to match.
  int F_ = 0, d_ = 0, W_ = 0, Dp_ = 0, RS_ = 0, max_width_ = 0;
  float bias_ = 0;
  Pair pair_ = Pair::kNone;
  std::vector<uint16_t> pi_, pj_;  // ascending by (i, j)
  std::vector<float> pr_;
  std::vector<uint32_t> pair_group_;  // starts of the runs of pairs with one i (+ the end)
  std::vector<Layer> layers_;
};

// Other models (DCN-v2, DLRM, compressed models): the dense model runs with
// its pruned MLP layers (the bundle's sparse weights) computed by this kernel
// through Model::SetServingKernels: one column by SELL SpMV (below
// kSingleRowMaxDensity, else dense), more by tiles of kSparseTile columns
// transposed to feature-major for CSR SpMM. Holds its own buffers: one per
// engine, not shared between threads.
class SparseLinearKernel : public LinearKernel {
 public:
  SparseLinearKernel(const CsrMatrix& w, std::vector<float> bias);
  void Apply(const float* x, int64_t n, float* y) const override;
  const CsrMatrix& csr() const { return csr_; }

 private:
  CsrMatrix csr_;
  SellMatrix sell_;
  std::vector<float> bias_, dense_;
  bool sparse_row_ = false;
  mutable std::vector<float> tx_, ty_, scratch_;
};

}  // namespace ctrps::worker::serve
