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
#pragma once

#include <vector>

#include "worker/nn/model.h"

namespace ctrps::worker {

class EmbeddingInput {
 public:
  EmbeddingInput() = default;
  EmbeddingInput(std::vector<int> emb_dims, bool has_linear, int first_field = 0);

  int num_fields() const { return static_cast<int>(emb_dims_.size()); }
  int RowWidth(int f) const { return (has_linear_ ? 1 : 0) + emb_dims_[f]; }
  bool has_linear() const { return has_linear_; }
  int first_field() const { return first_field_; }
  int emb_dim(int f) const { return emb_dims_[f]; }
  int offset(int f) const { return offsets_[f]; }
  int output_dim() const { return output_dim_; }
  // The dim shared by every gathered field, 0 if they differ (or are 0).
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

 private:
  std::vector<int> emb_dims_;
  std::vector<int> offsets_;
  bool has_linear_ = false;
  int first_field_ = 0;
  int output_dim_ = 0;
};

}  // namespace ctrps::worker
