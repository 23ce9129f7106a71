// DCN-v2, stacked: x0 = the concatenated, value-scaled embeddings (per-field
// dims may differ); x_{l+1} = x0 * (W_l x_l + b_l) + x_l for cross_layers
// layers (full rank, or W_l = U_l V_l^T when cross_rank > 0); then an MLP
// (mlp_dims hidden ReLU layers with dropout, linear output of width 1) on
// x_L gives the logit. With mlp_dims empty that MLP is a single linear
// layer: the cross-only model. No first-order term: rows are embeddings only.
#include <memory>

#include "common/check.h"
#include "worker/nn/cross.h"
#include "worker/nn/embedding.h"
#include "worker/nn/mlp.h"
#include "worker/nn/model_base.h"

namespace ctrps::worker {
namespace {

class DcnV2Model : public ModelBase {
 public:
  explicit DcnV2Model(const ModelOptions& o) : ModelBase(o) {
    emb_ = EmbeddingInput(o.emb_dims, /*has_linear=*/false);
    emb_.AddDecoders(&params_, o.emb_decode_dims);
    const int D = emb_.output_dim();
    for (int l = 0; l < o.cross_layers; ++l)
      cross_.emplace_back(&params_, "cross." + std::to_string(l), D, o.cross_rank);
    std::vector<int> dims = {D};
    dims.insert(dims.end(), o.mlp_dims.begin(), o.mlp_dims.end());
    dims.push_back(1);
    mlp_ = Mlp(&params_, "mlp", dims, o.dropout, o.seed, /*relu_last=*/false,
               MlpRanks(o, "mlp", static_cast<int>(dims.size()) - 1));
    xs_.resize(o.cross_layers + 1);
    mlps_.push_back(&mlp_);
    params_.Allocate(o.seed);
  }

  int RowWidth(int f) const override { return emb_.RowWidth(f); }

  void Forward(const SparseBatch& in, bool training, VectorF* logits) override {
    emb_.Forward(in, &xs_[0], nullptr);
    for (size_t l = 0; l < cross_.size(); ++l) cross_[l].Forward(xs_[0], xs_[l], &xs_[l + 1]);
    mlp_.Forward(xs_.back(), training);
    *logits = mlp_.output().row(0).transpose();
  }

  void Backward(const VectorF& dlogits, SparseBatch* in) override {
    CHECK_EQ(dlogits.size(), xs_[0].cols()) << "Backward batch differs from the last Forward";
    dlogits_row_ = dlogits.transpose();
    mlp_.Backward(xs_.back(), dlogits_row_, &dcur_);
    dx0_.setZero(xs_[0].rows(), xs_[0].cols());
    for (int l = static_cast<int>(cross_.size()) - 1; l >= 0; --l) {
      cross_[l].Backward(xs_[0], xs_[l], dcur_, &dx0_, &dnext_);
      dcur_.swap(dnext_);
    }
    dcur_ += dx0_;
    emb_.Backward(&dcur_, nullptr, in);
  }

  double FlopsPerExample() const override {
    double f = mlp_.FlopsPerExample();
    for (const auto& c : cross_) f += c.FlopsPerExample();
    return f;
  }

  uint64_t rng_state() const override { return mlp_.dropout_calls(); }
  void set_rng_state(uint64_t s) override { mlp_.set_dropout_calls(s); }

 private:
  EmbeddingInput emb_;
  std::vector<CrossLayer> cross_;
  Mlp mlp_;
  std::vector<MatrixF> xs_;  // x_0 (the embeddings) ... x_L
  MatrixF dcur_, dnext_, dx0_;
};

}  // namespace

std::unique_ptr<Model> NewDcnV2Model(const ModelOptions& options) {
  return std::make_unique<DcnV2Model>(options);
}

}  // namespace ctrps::worker
