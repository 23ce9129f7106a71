// The embedding input of a model: gathers each example's rows from the
// per-field FieldRows, scaled by the example's field values, into one
// features x batch matrix, and scatters the gradient back summed per unique
// key (FieldRows::grads, W x U).
//
// Row layout (model.h): [linear weight if has_linear][embedding, emb_dims[f]].
// Output layout: field f's embedding occupies rows [offset(f), offset(f) +
// emb_dims[f]) of every column, fields in order, for fields >= first_field;
// fields below first_field are not gathered (DLRM's dense fields) and get
// zero gradients.
//
// Decoders (AFM, COMPRESSION.md section 2): a field with a decoder stores
// k = emb_dims[f] coordinates c per row and its output block is the
// decoded vector v (U_f c + mu_f), d = decode_dims[f] wide, where U_f
// ("emb.<f>.decoder.weight", d x k) and mu_f ("emb.<f>.decoder.bias", d)
// are dense parameters of the model. Output offsets and widths are those
// of the decoded vectors.
#pragma once

#include <vector>

#include "worker/nn/dense_params.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

class EmbeddingInput {
 public:
  EmbeddingInput() = default;
  EmbeddingInput(std::vector<int> emb_dims, bool has_linear, int first_field = 0);

  // Registers the decoders of the fields with decode_dims[f] > 0 (empty: none)
  // as parameters of `params` (before it allocates). Once, after construction.
  void AddDecoders(DenseParamSet* params, const std::vector<int>& decode_dims);

  int num_fields() const { return static_cast<int>(emb_dims_.size()); }
  int RowWidth(int f) const { return (has_linear_ ? 1 : 0) + emb_dims_[f]; }
  bool has_linear() const { return has_linear_; }
  int first_field() const { return first_field_; }
  // Field f's width in the output (decoded, if it has a decoder).
  int emb_dim(int f) const { return out_dims_[f]; }
  int offset(int f) const { return out_offsets_[f]; }
  int output_dim() const { return output_dim_; }
  // The output width shared by every gathered field, 0 if they differ (or are 0).
  int common_dim() const;

  // CHECKs that the batch matches this layout (field count, row widths,
  // index and value shapes, indices in range).
  void CheckBatch(const SparseBatch& in) const;

  // emb (output_dim x B) = gathered, scaled embeddings. linear (if non-null and
  // has_linear): linear(b) = sum_f values(f, b) * linear_weight(f, b).
  void Forward(const SparseBatch& in, MatrixF* emb, VectorF* linear) const;

  // Sets every in->fields[f].grads to W x U: the per-key sums over the batch
  // of values(f, b) * demb(field f's rows, b) (embedding part; skipped when
  // demb is null) and values(f, b) * dlinear(b) (linear part; skipped when
  // dlinear is null).
  void Backward(const MatrixF* demb, const VectorF* dlinear, SparseBatch* in) const;

  bool has_decoders() const { return !decoder_w_.empty(); }
  // Serving (Model::PrepareForServing), with decoders: a layer reading the
  // output through w (out x output_dim()) reads FoldedInput through
  // *folded (out x folded_dim()): a decoded field's columns become w_f U_f
  // over its coordinates and one column w_f mu_f for its value; other
  // fields' columns are kept.
  int folded_dim() const { return gathered_dim_ + num_decoded_; }
  void FoldWeight(const Eigen::Ref<const MatrixF>& w, MatrixF* folded) const;
  // After Forward on `in`: the value-scaled coordinates as gathered, then
  // values(f, .) of each decoded field in field order (folded_dim() x B).
  void FoldedInput(const SparseBatch& in, MatrixF* x) const;

 private:

  std::vector<int> emb_dims_;   // stored widths (k for decoded fields)
  std::vector<int> offsets_;    // in the gathered (stored-width) layout
  std::vector<int> out_dims_, out_offsets_;  // in the output layout
  bool has_linear_ = false;
  int first_field_ = 0;
  int gathered_dim_ = 0;
  int output_dim_ = 0;
  // Decoders: parameter ids per field (-1: none), and the gathered
  // value-scaled coordinates of the last Forward and their gradient.
  DenseParamSet* params_ = nullptr;
  std::vector<int> decoder_w_, decoder_b_;
  int num_decoded_ = 0;
  mutable MatrixF gathered_, dgathered_;
};

}  // namespace ctrps::worker
