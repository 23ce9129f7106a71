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
    offsets_[f] = gathered_dim_;
    gathered_dim_ += emb_dims_[f];
  }
  out_dims_ = emb_dims_;
  out_offsets_ = offsets_;
  output_dim_ = gathered_dim_;
}

void EmbeddingInput::AddDecoders(DenseParamSet* params, const std::vector<int>& decode_dims) {
  CHECK(decoder_w_.empty()) << "AddDecoders called twice";
  if (decode_dims.empty()) return;
  CHECK_EQ(static_cast<int>(decode_dims.size()), num_fields()) << "decode_dims";
  params_ = params;
  decoder_w_.assign(num_fields(), -1);
  decoder_b_.assign(num_fields(), -1);
  output_dim_ = 0;
  for (int f = first_field_; f < num_fields(); ++f) {
    const int d = decode_dims[f];
    CHECK(d >= 0) << "field " << f << " decode dim " << d;
    if (d > 0) {
      CHECK_GT(emb_dims_[f], 0) << "field " << f << ": a decoder needs stored coordinates";
      const std::string name = "emb." + std::to_string(f) + ".decoder";
      decoder_w_[f] = params->Add(name + ".weight", d, emb_dims_[f], ParamInit::Xavier());
      decoder_b_[f] = params->Add(name + ".bias", d, 1, ParamInit::Zero());
      out_dims_[f] = d;
      ++num_decoded_;
    }
    out_offsets_[f] = output_dim_;
    output_dim_ += out_dims_[f];
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

namespace {

// The width shared by dims[first..], 0 if they differ (or are 0).
int CommonDim(const std::vector<int>& dims, int first) {
  int d = -1;
  for (size_t f = first; f < dims.size(); ++f) {
    if (d >= 0 && dims[f] != d) return 0;
    d = dims[f];
  }
  return d > 0 ? d : 0;
}

}  // namespace

int EmbeddingInput::common_dim() const { return CommonDim(out_dims_, first_field_); }

void EmbeddingInput::Forward(const SparseBatch& in, MatrixF* emb, VectorF* linear) const {
  CheckBatch(in);
  const int B = in.batch_size;
  const int lin = has_linear_ ? 1 : 0;
  MatrixF* gathered = has_decoders() ? &gathered_ : emb;
  gathered->resize(gathered_dim_, B);
  if (linear != nullptr) linear->setZero(B);
  const bool want_linear = linear != nullptr && has_linear_;
  internal::DispatchDim(CommonDim(emb_dims_, first_field_), [&](auto dim) {
    ParallelFor(B, 64, [&](int64_t b0, int64_t b1) {
      GatherColumns<decltype(dim)::value>(in, emb_dims_, offsets_, first_field_, lin, want_linear,
                                          b0, b1, gathered, linear);
    });
  });
  if (!has_decoders()) return;
  // v (U c + mu) = U (v c) + v mu, field by field.
  emb->resize(output_dim_, B);
  for (int f = first_field_; f < num_fields(); ++f) {
    auto out = emb->middleRows(out_offsets_[f], out_dims_[f]);
    const auto coded = gathered_.middleRows(offsets_[f], emb_dims_[f]);
    if (decoder_w_[f] < 0) {
      out = coded;
      continue;
    }
    out.noalias() = params_->value(decoder_w_[f]) * coded;
    out.noalias() += params_->value(decoder_b_[f]) * in.values.row(f);
  }
}

void EmbeddingInput::FoldWeight(const Eigen::Ref<const MatrixF>& w, MatrixF* folded) const {
  CHECK(has_decoders()) << "FoldWeight without decoders";
  CHECK_EQ(w.cols(), output_dim_) << "FoldWeight: the layer's input width";
  folded->resize(w.rows(), folded_dim());
  int value_col = gathered_dim_;
  for (int f = first_field_; f < num_fields(); ++f) {
    const auto wf = w.middleCols(out_offsets_[f], out_dims_[f]);
    auto coded = folded->middleCols(offsets_[f], emb_dims_[f]);
    if (decoder_w_[f] < 0) {
      coded = wf;
      continue;
    }
    coded.noalias() = wf * params_->value(decoder_w_[f]);
    folded->col(value_col++).noalias() = wf * params_->value(decoder_b_[f]);
  }
}

void EmbeddingInput::FoldedInput(const SparseBatch& in, MatrixF* x) const {
  CHECK(has_decoders() && gathered_.cols() == in.batch_size)
      << "FoldedInput needs decoders and a Forward on the same batch";
  x->resize(folded_dim(), in.batch_size);
  x->topRows(gathered_dim_) = gathered_;
  int row = gathered_dim_;
  for (int f = first_field_; f < num_fields(); ++f)
    if (decoder_w_[f] >= 0) x->row(row++) = in.values.row(f);
}

void EmbeddingInput::Backward(const MatrixF* demb, const VectorF* dlinear, SparseBatch* in) const {
  const int B = in->batch_size;
  const int lin = has_linear_ ? 1 : 0;
  if (demb != nullptr) CHECK(demb->rows() == output_dim_ && demb->cols() == B) << "demb shape";
  CHECK(!has_decoders() || demb == nullptr || gathered_.cols() == B)
      << "Backward batch differs from the last Forward";
  if (dlinear != nullptr) CHECK_EQ(dlinear->size(), B);
  if (!has_linear_) dlinear = nullptr;
  if (has_decoders() && demb != nullptr) {
    // dU += demb (v c)^T, dmu += demb v^T, d(v c) = U^T demb.
    dgathered_.resize(gathered_dim_, B);
    for (int f = first_field_; f < num_fields(); ++f) {
      const auto d_out = demb->middleRows(out_offsets_[f], out_dims_[f]);
      auto d_coded = dgathered_.middleRows(offsets_[f], emb_dims_[f]);
      if (decoder_w_[f] < 0) {
        d_coded = d_out;
        continue;
      }
      params_->grad(decoder_w_[f]).noalias() +=
          d_out * gathered_.middleRows(offsets_[f], emb_dims_[f]).transpose();
      params_->grad(decoder_b_[f]).noalias() += d_out * in->values.row(f).transpose();
      d_coded.noalias() = params_->value(decoder_w_[f]).transpose() * d_out;
    }
    demb = &dgathered_;
  }
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
