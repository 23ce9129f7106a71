// DLRM (Naumov et al. 2019). With N = num_dense_fields and d the (common)
// embedding dim:
//  - bottom MLP: the N dense fields' values (SparseBatch::values rows 0..N-1,
//    e.g. the log-scaled Criteo integers) -> bottom_mlp_dims, ReLU on every
//    layer, last width d;
//  - vectors: [bottom output (if N > 0), e_N, ..., e_{F-1}], the value-scaled
//    embeddings of the other fields. Fields below N have rows (RowWidth = d,
//    for a uniform row layout) that the model ignores: their gradients are 0;
//  - interaction: dot = [bottom output (if N > 0); <z_i, z_j> for i < j], or
//    cat = all vectors concatenated;
//  - top MLP: mlp_dims hidden ReLU layers with dropout, linear output of width 1.
#include <memory>

#include "common/check.h"
#include "worker/nn/embedding.h"
#include "worker/nn/interaction.h"
#include "worker/nn/mlp.h"
#include "worker/nn/model_base.h"

namespace ctrps::worker {
namespace {

class DlrmModel : public ModelBase {
 public:
  explicit DlrmModel(const ModelOptions& o)
      : ModelBase(o), num_dense_(o.num_dense_fields), dim_(o.FieldDim(o.num_dense_fields)) {
    emb_ = EmbeddingInput(o.emb_dims, /*has_linear=*/false, /*first_field=*/num_dense_);
    emb_.AddDecoders(&params_, o.emb_decode_dims);
    if (num_dense_ > 0) {
      std::vector<int> dims = {num_dense_};
      dims.insert(dims.end(), o.bottom_mlp_dims.begin(), o.bottom_mlp_dims.end());
      bottom_ = std::make_unique<Mlp>(&params_, "bottom_mlp", dims, 0.0f, o.seed,
                                      /*relu_last=*/true,
                                      MlpRanks(o, "bottom_mlp", static_cast<int>(dims.size()) - 1));
    }
    const int vectors = o.num_fields - num_dense_ + (num_dense_ > 0 ? 1 : 0);
    dot_ = DotInteraction(vectors, dim_);
    const int top_in = o.dlrm_interaction_cat
                           ? vectors * dim_
                           : (num_dense_ > 0 ? dim_ : 0) + dot_.num_pairs();
    std::vector<int> dims = {top_in};
    dims.insert(dims.end(), o.mlp_dims.begin(), o.mlp_dims.end());
    dims.push_back(1);
    top_ = Mlp(&params_, "top_mlp", dims, o.dropout, o.seed, /*relu_last=*/false,
               MlpRanks(o, "top_mlp", static_cast<int>(dims.size()) - 1));
    if (bottom_) mlps_.push_back(bottom_.get());
    mlps_.push_back(&top_);
    params_.Allocate(o.seed);
  }

  int RowWidth(int f) const override { return emb_.RowWidth(f); }

  // The concatenation interaction feeds the decoded vectors straight into
  // the top MLP: fold the decoders into its first layer, whose columns for
  // the bottom output stay as they are.
  void PrepareForServing() override {
    serving_ = options_.dlrm_interaction_cat && emb_.has_decoders();
    if (!serving_) return;
    const auto w = top_.layer(0).weight();
    const int keep = bottom_ ? dim_ : 0;
    MatrixF folded_emb;
    emb_.FoldWeight(w.rightCols(w.cols() - keep), &folded_emb);
    folded_w0_.resize(w.rows(), keep + folded_emb.cols());
    folded_w0_.leftCols(keep) = w.leftCols(keep);
    folded_w0_.rightCols(folded_emb.cols()) = folded_emb;
  }

  void Forward(const SparseBatch& in, bool training, VectorF* logits) override {
    if (training) serving_ = false;
    emb_.Forward(in, &emb_out_, nullptr);
    const Eigen::Index B = emb_out_.cols();
    const MatrixF* z = &emb_out_;
    if (bottom_) {
      dense_in_ = in.values.topRows(num_dense_);
      bottom_->Forward(dense_in_, training);
    }
    if (serving_) {  // top input [bottom output; coordinates; decoded fields' values]
      emb_.FoldedInput(in, &folded_in_);
      const MatrixF* x = &folded_in_;
      if (bottom_) {
        z_.resize(dim_ + folded_in_.rows(), B);
        z_.topRows(dim_) = bottom_->output();
        z_.bottomRows(folded_in_.rows()) = folded_in_;
        x = &z_;
      }
      top_.ForwardFolded(*x, folded_w0_);
      *logits = top_.output().row(0).transpose();
      return;
    }
    if (bottom_) {
      z_.resize(dim_ + emb_out_.rows(), B);
      z_.topRows(dim_) = bottom_->output();
      z_.bottomRows(emb_out_.rows()) = emb_out_;
      z = &z_;
    }
    top_in_ = z;
    if (!options_.dlrm_interaction_cat) {
      dot_.Forward(*z, &pairs_);
      top_in_ = &pairs_;
      if (bottom_) {
        cat_.resize(dim_ + pairs_.rows(), B);
        cat_.topRows(dim_) = bottom_->output();
        cat_.bottomRows(pairs_.rows()) = pairs_;
        top_in_ = &cat_;
      }
    }
    top_.Forward(*top_in_, training);
    *logits = top_.output().row(0).transpose();
  }

  void Backward(const VectorF& dlogits, SparseBatch* in) override {
    CHECK_EQ(dlogits.size(), emb_out_.cols()) << "Backward batch differs from the last Forward";
    dlogits_row_ = dlogits.transpose();
    top_.Backward(*top_in_, dlogits_row_, &dtop_in_);
    const MatrixF& z = bottom_ ? z_ : emb_out_;
    const MatrixF* dz = &dtop_in_;  // cat: the top input is z itself
    if (!options_.dlrm_interaction_cat) {
      const int skip = bottom_ ? dim_ : 0;
      dot_.Backward(z, dtop_in_.bottomRows(dtop_in_.rows() - skip), &dz_);
      if (bottom_) dz_.topRows(dim_) += dtop_in_.topRows(dim_);
      dz = &dz_;
    }
    if (bottom_) {
      dbottom_ = dz->topRows(dim_);
      bottom_->Backward(dense_in_, dbottom_, nullptr);
      demb_ = dz->bottomRows(emb_out_.rows());
      dz = &demb_;
    }
    emb_.Backward(dz, nullptr, in);
  }

  double FlopsPerExample() const override {
    double f = top_.FlopsPerExample();
    if (bottom_) f += bottom_->FlopsPerExample();
    if (!options_.dlrm_interaction_cat) f += dot_.FlopsPerExample();
    return f;
  }

  uint64_t rng_state() const override { return top_.dropout_calls(); }
  void set_rng_state(uint64_t s) override { top_.set_dropout_calls(s); }

 private:
  int num_dense_, dim_;
  EmbeddingInput emb_;
  std::unique_ptr<Mlp> bottom_;
  DotInteraction dot_;
  Mlp top_;
  MatrixF emb_out_, dense_in_, z_, pairs_, cat_;
  const MatrixF* top_in_ = nullptr;
  MatrixF dtop_in_, dz_, dbottom_, demb_;
  // PrepareForServing (cat only): the top MLP's first weight folded over the
  // decoders, and the embedding part of its input.
  bool serving_ = false;
  MatrixF folded_w0_, folded_in_;
};

}  // namespace

std::unique_ptr<Model> NewDlrmModel(const ModelOptions& options) {
  return std::make_unique<DlrmModel>(options);
}

}  // namespace ctrps::worker
