// LR, FM, FwFM, DeepFM and DeepFwFM: one family,
//   logit = bias + sum_f v_f w_f  [+ FM or FwFM over the embeddings]  [+ MLP(embeddings)]
// where the MLP input is the concatenation of the value-scaled embeddings and
// the MLP (DeepFM, DeepFwFM) has ReLU hidden layers, dropout, and a linear
// output of width 1.
#include <memory>

#include "common/check.h"
#include "worker/nn/embedding.h"
#include "worker/nn/factorization.h"
#include "worker/nn/mlp.h"
#include "worker/nn/model_base.h"

namespace ctrps::worker {
namespace {

class FactorModel : public ModelBase {
 public:
  explicit FactorModel(const ModelOptions& o) : ModelBase(o) {
    const ModelType t = o.type;
    std::vector<int> dims = o.emb_dims;
    if (t == ModelType::kLR) dims.assign(o.num_fields, 0);
    emb_ = EmbeddingInput(dims, /*has_linear=*/true);
    if (t != ModelType::kLR) emb_.AddDecoders(&params_, o.emb_decode_dims);
    bias_ = params_.Add("bias", 1, 1, ParamInit::Zero());
    const int dim = t == ModelType::kLR ? 0 : o.FieldDim(0);
    if (t == ModelType::kFM || t == ModelType::kDeepFM) {
      pair_ = Pair::kFm;
      fm_ = FmInteraction(o.num_fields, dim);
    } else if (t == ModelType::kFwFM || t == ModelType::kDeepFwFM) {
      pair_ = Pair::kFwFm;
      fwfm_ = FwFmInteraction(&params_, "fwfm.r", o.num_fields, dim);
    }
    if (t == ModelType::kDeepFM || t == ModelType::kDeepFwFM) {
      std::vector<int> mlp_dims = {emb_.output_dim()};
      mlp_dims.insert(mlp_dims.end(), o.mlp_dims.begin(), o.mlp_dims.end());
      mlp_dims.push_back(1);
      const int layers = static_cast<int>(mlp_dims.size()) - 1;
      mlp_ = std::make_unique<Mlp>(&params_, "mlp", mlp_dims, o.dropout, o.seed,
                                   /*relu_last=*/false, MlpRanks(o, "mlp", layers));
    }
    if (mlp_) mlps_.push_back(mlp_.get());
    params_.Allocate(o.seed);
  }

  int RowWidth(int f) const override { return emb_.RowWidth(f); }

  void PrepareForServing() override {
    serving_ = mlp_ && emb_.has_decoders();
    if (serving_) emb_.FoldWeight(mlp_->layer(0).weight(), &folded_w0_);
  }

  void Forward(const SparseBatch& in, bool training, VectorF* logits) override {
    if (training) serving_ = false;
    emb_.Forward(in, &x_, &linear_);
    *logits = (linear_.array() + params_.value(bias_)(0, 0)).matrix();
    if (pair_ == Pair::kFm) {
      fm_.Forward(x_, &pair_out_);
      *logits += pair_out_;
    } else if (pair_ == Pair::kFwFm) {
      fwfm_.Forward(x_, &pair_out_);
      *logits += pair_out_;
    }
    if (mlp_ && serving_) {
      emb_.FoldedInput(in, &x_folded_);
      mlp_->ForwardFolded(x_folded_, folded_w0_);
      *logits += mlp_->output().row(0).transpose();
    } else if (mlp_) {
      mlp_->Forward(x_, training);
      *logits += mlp_->output().row(0).transpose();
    }
  }

  void Backward(const VectorF& dlogits, SparseBatch* in) override {
    CHECK_EQ(dlogits.size(), x_.cols()) << "Backward batch differs from the last Forward";
    params_.grad(bias_)(0, 0) += dlogits.sum();
    const bool has_emb = emb_.output_dim() > 0;
    if (mlp_) {
      dlogits_row_ = dlogits.transpose();
      mlp_->Backward(x_, dlogits_row_, &dx_);
    } else if (has_emb) {
      dx_.setZero(x_.rows(), x_.cols());
    }
    if (pair_ == Pair::kFm) fm_.Backward(x_, dlogits, &dx_);
    if (pair_ == Pair::kFwFm) fwfm_.Backward(dlogits, &dx_);
    emb_.Backward(has_emb ? &dx_ : nullptr, &dlogits, in);
  }

  double FlopsPerExample() const override {
    double f = 2.0 * options_.num_fields + 1;  // linear term and bias
    if (pair_ == Pair::kFm) f += fm_.FlopsPerExample();
    if (pair_ == Pair::kFwFm) f += fwfm_.FlopsPerExample();
    if (mlp_) f += mlp_->FlopsPerExample();
    return f;
  }

  uint64_t rng_state() const override { return mlp_ ? mlp_->dropout_calls() : 0; }
  void set_rng_state(uint64_t s) override {
    if (mlp_) mlp_->set_dropout_calls(s);
  }

 private:
  enum class Pair { kNone, kFm, kFwFm };
  EmbeddingInput emb_;
  int bias_ = -1;
  Pair pair_ = Pair::kNone;
  FmInteraction fm_;
  FwFmInteraction fwfm_;
  std::unique_ptr<Mlp> mlp_;
  MatrixF x_, dx_;  // embeddings (D x B) and their gradient
  // PrepareForServing: the MLP's first weight folded over the decoders, and
  // its input (EmbeddingInput::FoldWeight, FoldedInput).
  bool serving_ = false;
  MatrixF folded_w0_, x_folded_;
  VectorF linear_, pair_out_;
};

}  // namespace

std::unique_ptr<Model> NewFactorModel(const ModelOptions& options) {
  return std::make_unique<FactorModel>(options);
}

}  // namespace ctrps::worker
