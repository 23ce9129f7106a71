#include "worker/nn/embedding.h"

#include "common/check.h"
#include "worker/nn/dim_dispatch.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {

EmbeddingInput::EmbeddingInput(std::vector<int> emb_dims, bool has_linear, int first_field)
    : emb_dims_(std::move(emb_dims)), has_linear_(has_linear), first_field_(first_field) {
  CHECK(first_field >= 0 && first_field <= num_fields()) << "first_field " << first_field;
  offsets_.assign(emb_dims_.size(), 0);
  for (int f = first_field_; f < num_fields(); ++f) {
    CHECK_GE(emb_dims_[f], 0);
    offsets_[f] = output_dim_;
    output_dim_ += emb_dims_[f];
  }
}

void EmbeddingInput::CheckBatch(const SparseBatch& in) const {
  const int B = in.batch_size;
  CHECK_EQ(static_cast<int>(in.fields.size()), num_fields()) << "fields in the batch";
  CHECK(in.values.rows() == num_fields() && in.values.cols() == B)
      << "values is " << in.values.rows() << " x " << in.values.cols() << ", expected "
      << num_fields() << " x " << B;
  for (int f = 0; f < num_fields(); ++f) {
    const FieldRows& fr = in.fields[f];
    const int64_t U = static_cast<int64_t>(fr.unique_keys.size());
    CHECK_EQ(static_cast<int>(fr.index.size()), B) << "field " << f << " index size";
    CHECK(fr.rows.rows() == RowWidth(f) && fr.rows.cols() == U)
        << "field " << f << ": rows is " << fr.rows.rows() << " x " << fr.rows.cols()
        << ", expected " << RowWidth(f) << " x " << U;
    for (int b = 0; b < B; ++b)
      CHECK(fr.index[b] >= 0 && fr.index[b] < U)
          << "field " << f << " example " << b << ": index " << fr.index[b] << " of " << U;
  }
}

namespace {

// kD > 0: every gathered field has dim kD, so a row copy is a few vector
// instructions; kD == 0: each field's own dim.
template <int kD>
using RowVec = Eigen::Matrix<float, (kD > 0 ? kD : Eigen::Dynamic), 1>;

template <int kD>
void GatherColumns(const SparseBatch& in, const std::vector<int>& dims,
                   const std::vector<int>& offsets, int first, int lin, bool want_linear,
                   int64_t b0, int64_t b1, MatrixF* emb, VectorF* linear) {
  const int F = static_cast<int>(dims.size());
  const int64_t D = emb->rows();
  for (int64_t b = b0; b < b1; ++b) {
    float* dst = emb->data() + b * D;
    const float* values = in.values.data() + b * F;
    float lin_sum = 0;
    for (int f = first; f < F; ++f) {
      const FieldRows& fr = in.fields[f];
      const int d = kD > 0 ? kD : dims[f];
      const float v = values[f];
      const float* row = fr.rows.data() + static_cast<int64_t>(fr.index[b]) * (lin + d);
      if (want_linear) lin_sum += v * row[0];
      Eigen::Map<RowVec<kD>>(dst + offsets[f], d) = v * Eigen::Map<const RowVec<kD>>(row + lin, d);
    }
    if (want_linear) (*linear)[b] = lin_sum;
  }
}

template <int kD>
void ScatterField(const MatrixF* demb, const VectorF* dlinear, int f, int d, int offset, int lin,
                  SparseBatch* in) {
  FieldRows& fr = in->fields[f];
  const int w = lin + (kD > 0 ? kD : d);
  const int F = static_cast<int>(in->values.rows());
  const int B = in->batch_size;
  for (int b = 0; b < B; ++b) {
    const float v = in->values.data()[static_cast<int64_t>(b) * F + f];
    float* g = fr.grads.data() + static_cast<int64_t>(fr.index[b]) * w;
    if (dlinear != nullptr) g[0] += v * (*dlinear)[b];
    if (demb != nullptr) {
      const float* src = demb->data() + static_cast<int64_t>(b) * demb->rows() + offset;
      Eigen::Map<RowVec<kD>>(g + lin, w - lin) += v * Eigen::Map<const RowVec<kD>>(src, w - lin);
    }
  }
}

}  // namespace

int EmbeddingInput::common_dim() const {
  int d = -1;
  for (int f = first_field_; f < num_fields(); ++f) {
    if (d >= 0 && emb_dims_[f] != d) return 0;
    d = emb_dims_[f];
  }
  return d > 0 ? d : 0;
}

void EmbeddingInput::Forward(const SparseBatch& in, MatrixF* emb, VectorF* linear) const {
  CheckBatch(in);
  const int B = in.batch_size;
  const int lin = has_linear_ ? 1 : 0;
  emb->resize(output_dim_, B);
  if (linear != nullptr) linear->setZero(B);
  const bool want_linear = linear != nullptr && has_linear_;
  internal::DispatchDim(common_dim(), [&](auto dim) {
    ParallelFor(B, 64, [&](int64_t b0, int64_t b1) {
      GatherColumns<decltype(dim)::value>(in, emb_dims_, offsets_, first_field_, lin, want_linear,
                                          b0, b1, emb, linear);
    });
  });
}

void EmbeddingInput::Backward(const MatrixF* demb, const VectorF* dlinear, SparseBatch* in) const {
  const int B = in->batch_size;
  const int lin = has_linear_ ? 1 : 0;
  if (demb != nullptr) CHECK(demb->rows() == output_dim_ && demb->cols() == B) << "demb shape";
  if (dlinear != nullptr) CHECK_EQ(dlinear->size(), B);
  if (!has_linear_) dlinear = nullptr;
  // One field per task: each field's gradient rows belong to one thread,
  // summed in batch order, so the result does not depend on the threads.
  ParallelFor(num_fields(), 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      FieldRows& fr = in->fields[f];
      fr.grads.setZero(RowWidth(static_cast<int>(f)),
                       static_cast<Eigen::Index>(fr.unique_keys.size()));
      if (f < first_field_) continue;
      const int d = emb_dims_[f];
      internal::DispatchDim(d, [&](auto dim) {
        ScatterField<decltype(dim)::value>(d > 0 ? demb : nullptr, dlinear, static_cast<int>(f), d,
                                           offsets_[f], lin, in);
      });
    }
  });
}

}  // namespace ctrps::worker
