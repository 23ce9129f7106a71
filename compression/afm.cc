#include "compression/afm.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <Eigen/SVD>

#include "compression/pca.h"
#include "worker/nn/dense_params.h"

namespace ctrps::compression {

using worker::LinearLayerShape;
using worker::MatrixF;
using worker::ModelOptions;
using worker::ModelType;

namespace {

// Fields whose rows hold an embedding the model reads.
bool HasEmbedding(const ModelOptions& m, int f) {
  if (m.type == ModelType::kLR || m.emb_dims.empty() || m.emb_dims[f] == 0) return false;
  return !(m.type == ModelType::kDLRM && f < m.num_dense_fields);
}

int LinearPrefix(const ModelOptions& m) {
  return m.type == ModelType::kDCNv2 || m.type == ModelType::kDLRM ? 0 : 1;
}

Status CheckRank(const RankSetting& r, int limit, const std::string& where, const std::string& of) {
  if (r.rank < 0 || (r.rank > 0 && r.variance > 0))
    return Status::InvalidArgument(where + ": set either rank (>= 1) or variance, not both");
  if (r.rank > limit)
    return Status::InvalidArgument(where + ": rank " + std::to_string(r.rank) +
                                   " is larger than " + of + " (" + std::to_string(limit) + ")");
  if (r.rank == 0 && !(r.variance > 0 && r.variance <= 1))
    return Status::InvalidArgument(where + ": variance " + std::to_string(r.variance) +
                                   " out of (0, 1] (or set a rank)");
  return Status::OK();
}

// A dense parameter of `m` by name, as a map.
StatusOr<worker::MapF> Param(worker::Model* m, const std::string& name) {
  for (const worker::DenseParamInfo& p : m->DenseParams())
    if (p.name == name)
      return worker::MapF(m->dense_values() + p.offset, p.rows, p.cols);
  return Status::NotFound("the model has no parameter '" + name + "'");
}

StatusOr<Eigen::MatrixXd> ParamOf(const worker::Model& m, const std::string& name) {
  for (const worker::DenseParamInfo& p : m.DenseParams())
    if (p.name == name)
      return Eigen::MatrixXd(
          Eigen::Map<const MatrixF>(const_cast<worker::Model&>(m).dense_values() + p.offset,
                                    p.rows, p.cols)
              .cast<double>());
  return Status::NotFound("the model has no parameter '" + name + "'");
}

}  // namespace

std::vector<RankSetting> AfmPlan::FieldSettings(const ModelOptions& model) const {
  std::vector<RankSetting> out(model.num_fields);
  for (int f = 0; f < model.num_fields; ++f)
    if (HasEmbedding(model, f)) out[f] = embeddings;
  for (const auto& [f, r] : fields)
    if (f >= 0 && f < model.num_fields) out[f] = r;
  return out;
}

Status ValidateAfmPlan(const AfmPlan& plan, const ModelOptions& model, const std::string& where) {
  const std::vector<LinearLayerShape> layers = worker::LinearLayers(model);
  const std::string model_name = worker::ModelTypeName(model.type);
  if (plan.layers.empty() && !plan.embeddings.set() && plan.fields.empty())
    return Status::InvalidArgument(where + ": nothing to compress (no layers, embeddings or fields)");
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& [name, r] = plan.layers[i];
    const std::string at = where + ".layers[" + std::to_string(i) + "]";
    auto it = std::find_if(layers.begin(), layers.end(),
                           [&](const LinearLayerShape& l) { return l.layer == name; });
    if (it == layers.end()) {
      std::string names;
      for (const auto& l : layers) names += (names.empty() ? "" : ", ") + l.layer;
      return Status::InvalidArgument(at + ": " + model_name + " has no layer '" + name +
                                     "'; its layers are: " + (names.empty() ? "(none)" : names));
    }
    if (it->rank > 0)
      return Status::InvalidArgument(at + ": layer '" + name + "' is already low-rank (rank " +
                                     std::to_string(it->rank) + ")");
    const bool svd = plan.basis == AfmPlan::Basis::kWeightSvd;
    RETURN_IF_ERROR(CheckRank(r, svd ? std::min(it->in, it->out) : it->out, at,
                              svd ? "the layer's smaller side" : "the layer's output width"));
    for (size_t j = 0; j < i; ++j)
      if (plan.layers[j].first == name)
        return Status::InvalidArgument(at + ": layer '" + name + "' is listed twice");
  }
  auto check_field = [&](int f, const RankSetting& r, const std::string& at) -> Status {
    if (f < 0 || f >= model.num_fields)
      return Status::InvalidArgument(at + ": field " + std::to_string(f) + " out of range (the " +
                                     "model has " + std::to_string(model.num_fields) + " fields)");
    if (!HasEmbedding(model, f))
      return Status::InvalidArgument(at + ": " + model_name + " has no embedding for field " +
                                     std::to_string(f) + " to compress");
    if (!model.emb_decode_dims.empty() && model.emb_decode_dims[f] > 0)
      return Status::InvalidArgument(at + ": field " + std::to_string(f) +
                                     " is already compressed (rows of " +
                                     std::to_string(model.emb_dims[f]) + " coordinates)");
    if (r.relu) return Status::InvalidArgument(at + ": relu applies to layers only");
    return CheckRank(r, model.FieldDim(f), at, "the embedding dim");
  };
  if (plan.embeddings.set()) {
    bool any = false;
    for (int f = 0; f < model.num_fields; ++f) {
      if (!HasEmbedding(model, f)) continue;
      any = true;
      RETURN_IF_ERROR(check_field(f, plan.embeddings, where + ".embeddings"));
    }
    if (!any)
      return Status::InvalidArgument(where + ".embeddings: " + model_name +
                                     " has no embedding tables");
  }
  for (size_t i = 0; i < plan.fields.size(); ++i)
    RETURN_IF_ERROR(check_field(plan.fields[i].first, plan.fields[i].second,
                                where + ".fields[" + std::to_string(i) + "]"));
  if (plan.max_rows < 0) return Status::InvalidArgument(where + ".max_rows must be >= 0");
  return Status::OK();
}

StatusOr<std::unique_ptr<AfmStatistics>> AfmStatistics::Start(const AfmPlan& plan,
                                                               worker::Model* model) {
  std::unique_ptr<AfmStatistics> s(new AfmStatistics());
  s->model_ = model;
  const ModelOptions& mo = model->options();
  const std::vector<LinearLayerShape> shapes = worker::LinearLayers(mo);
  s->taps_.resize(plan.layers.size());
  std::vector<std::pair<std::string, MatrixF*>> taps;
  if (plan.basis == AfmPlan::Basis::kOutputFeatures) {
    for (size_t i = 0; i < plan.layers.size(); ++i) {
      auto it = std::find_if(shapes.begin(), shapes.end(),
                             [&](const LinearLayerShape& l) { return l.layer == plan.layers[i].first; });
      if (it == shapes.end()) return Status::NotFound("no layer " + plan.layers[i].first);
      s->layers_.emplace_back(it->out);
      taps.push_back({plan.layers[i].first, &s->taps_[i]});
    }
  }
  RETURN_IF_ERROR(model->SetLayerTaps(taps));
  const std::vector<RankSetting> fields = plan.FieldSettings(mo);
  s->fields_.resize(mo.num_fields);
  s->offset_.assign(mo.num_fields, 0);
  const bool outputs = plan.basis == AfmPlan::Basis::kOutputFeatures;
  for (int f = 0; f < mo.num_fields; ++f) {
    if (fields[f].set() && outputs) s->fields_[f] = Moments(mo.FieldDim(f));
    s->offset_[f] = model->RowWidth(f) - mo.emb_dims[f];
  }
  return s;
}

AfmStatistics::~AfmStatistics() {
  if (model_) (void)model_->SetLayerTaps({});
}

Status AfmStatistics::Observe(const worker::SparseBatch& batch, int rows) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (taps_[i].cols() < rows)
      return Status::Internal("layer tap " + std::to_string(i) + " holds " +
                              std::to_string(taps_[i].cols()) + " columns for " +
                              std::to_string(rows) + " rows");
    layers_[i].AddColumns(taps_[i], rows);
  }
  for (size_t f = 0; f < fields_.size(); ++f) {
    if (fields_[f].dim() == 0) continue;
    const worker::FieldRows& fr = batch.fields[f];
    weight_.assign(fr.unique_keys.size(), 0.0);
    for (int b = 0; b < rows; ++b) weight_[fr.index[b]] += 1.0;
    fields_[f].AddWeightedColumns(fr.rows.middleRows(offset_[f], fields_[f].dim()), weight_);
  }
  rows_ += rows;
  return Status::OK();
}

Status AfmStatistics::Combine(ps::WorkerGroup* group) {
  std::vector<Moments*> all;
  for (Moments& m : layers_) all.push_back(&m);
  for (Moments& m : fields_)
    if (m.dim() > 0) all.push_back(&m);
  return CombineOverWorkers(all, group, "the AFM statistics");
}

StatusOr<Eigen::MatrixXd> TableGram(ps::EmbeddingClient* client, int table, int offset, int dim) {
  // Each product of two floats is exact in double; its fixed-point image
  // (2^-64 resolution) adds associatively, so the order rows arrive in
  // does not change the sum.
  const size_t n = static_cast<size_t>(dim) * (dim + 1) / 2;
  std::vector<__int128> acc(n, 0);
  bool overflow = false;
  RETURN_IF_ERROR(client->ScanRows(table, [&](Key, const float* row) {
    const float* e = row + offset;
    size_t k = 0;
    for (int j = 0; j < dim; ++j)
      for (int i = j; i < dim; ++i) {
        const double p = static_cast<double>(e[i]) * e[j];
        if (!(std::fabs(p) < 0x1p60)) overflow = true;
        else acc[k] += static_cast<__int128>(std::ldexp(p, 64));
        ++k;
      }
    return !overflow;
  }));
  if (overflow)
    return Status::InvalidArgument("table " + std::to_string(table) +
                                   " holds values too large (or not finite) for its Gram matrix");
  Eigen::MatrixXd g(dim, dim);
  size_t k = 0;
  for (int j = 0; j < dim; ++j)
    for (int i = j; i < dim; ++i) {
      const __int128 v = acc[k++];
      const double hi = std::ldexp(static_cast<double>(static_cast<int64_t>(v >> 64)), 0);
      const double lo = std::ldexp(static_cast<double>(static_cast<uint64_t>(v)), -64);
      g(i, j) = g(j, i) = hi + lo;
    }
  return g;
}

std::vector<std::string> CopyDenseByName(const worker::Model& from, worker::Model* to) {
  std::vector<std::string> missing;
  for (const worker::DenseParamInfo& p : to->DenseParams()) {
    bool done = false;
    for (const worker::DenseParamInfo& q : from.DenseParams())
      if (q.name == p.name && q.rows == p.rows && q.cols == p.cols) {
        const float* src = const_cast<worker::Model&>(from).dense_values() + q.offset;
        std::copy_n(src, static_cast<size_t>(p.rows) * p.cols, to->dense_values() + p.offset);
        done = true;
      }
    if (!done) missing.push_back(p.name);
  }
  return missing;
}

StatusOr<AfmOutcome> BuildAfm(const AfmPlan& plan, const worker::Model& old,
                              const AfmStatistics* stats, const std::vector<Eigen::MatrixXd>& grams) {
  const ModelOptions& mo = old.options();
  const bool outputs = plan.basis == AfmPlan::Basis::kOutputFeatures;
  if (outputs && stats == nullptr) return Status::InvalidArgument("AFM needs its statistics");
  AfmOutcome out;
  out.options = mo;
  const std::vector<LinearLayerShape> shapes = worker::LinearLayers(mo);

  // Layers: the factors of each, in double.
  struct LayerFactors {
    std::string name;
    Eigen::MatrixXd wa, wb;
    Eigen::VectorXd ba, bb;
  };
  std::vector<LayerFactors> factors;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& [name, r] = plan.layers[i];
    ASSIGN_OR_RETURN(Eigen::MatrixXd w, ParamOf(old, name + ".weight"));
    ASSIGN_OR_RETURN(Eigen::MatrixXd b, ParamOf(old, name + ".bias"));
    LayerFactors lf;
    lf.name = name;
    AfmOutcome::Line line;
    line.what = name;
    line.width = static_cast<int>(w.rows());
    if (outputs) {
      const Moments& m = stats->layer(i);
      if (m.count() <= 0) return Status::InvalidArgument("no statistics rows for layer " + name);
      const Eigensystem e = SymmetricEigen(m.Covariance());
      const int k = ChooseRank(e.values, r.rank, r.variance);
      const Eigen::MatrixXd u = e.vectors.leftCols(k);
      const Eigen::VectorXd mu = m.Mean();
      lf.wa = u.transpose() * w;
      lf.ba = u.transpose() * b.col(0);
      lf.wb = u;
      lf.bb = mu - u * (u.transpose() * mu);
      line.rank = k;
      line.kept = KeptFraction(e.values, k);
      line.dropped = e.values.tail(e.values.size() - k).sum();
    } else {
      Eigen::BDCSVD<Eigen::MatrixXd> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
      const Eigen::VectorXd energy = svd.singularValues().array().square();
      const int k = ChooseRank(energy, r.rank, r.variance);
      lf.wa = svd.singularValues().head(k).asDiagonal() * svd.matrixV().leftCols(k).transpose();
      lf.ba = Eigen::VectorXd::Zero(k);
      lf.wb = svd.matrixU().leftCols(k);
      lf.bb = b.col(0);
      line.rank = k;
      line.kept = KeptFraction(energy, k);
      line.dropped = energy.tail(energy.size() - k).sum();
    }
    out.options.low_rank.push_back({name, line.rank, r.relu});
    out.report.push_back(line);
    factors.push_back(std::move(lf));
  }

  // Fields: basis and mean of each compressed table.
  const std::vector<RankSetting> fields = plan.FieldSettings(mo);
  struct FieldFactors {
    int field;
    Eigen::MatrixXd u;
    Eigen::VectorXd mu;
  };
  std::vector<FieldFactors> field_factors;
  for (int f = 0; f < mo.num_fields; ++f) {
    if (!fields[f].set()) continue;
    const int d = mo.FieldDim(f);
    Eigensystem e;
    Eigen::VectorXd mu = Eigen::VectorXd::Zero(d);
    if (outputs) {
      const Moments& m = stats->field(f);
      if (m.count() <= 0) return Status::InvalidArgument("no statistics rows for field " + std::to_string(f));
      e = SymmetricEigen(m.Covariance());
      mu = m.Mean();
    } else {
      if (static_cast<int>(grams.size()) <= f || grams[f].rows() != d)
        return Status::InvalidArgument("no Gram matrix for field " + std::to_string(f));
      e = SymmetricEigen(grams[f]);
    }
    const int k = ChooseRank(e.values, fields[f].rank, fields[f].variance);
    AfmOutcome::Line line;
    line.what = "field " + std::to_string(f);
    line.width = d;
    line.rank = k;
    line.kept = KeptFraction(e.values, k);
    line.dropped = e.values.tail(e.values.size() - k).sum();
    out.report.push_back(line);
    if (out.options.emb_decode_dims.empty()) out.options.emb_decode_dims.assign(mo.num_fields, 0);
    out.options.emb_decode_dims[f] = d;
    out.options.emb_dims[f] = k;
    AfmOutcome::TableChange tc;
    tc.field = f;
    tc.change.keep_prefix = LinearPrefix(mo);
    tc.change.in_dim = d;
    tc.change.out_dim = k;
    tc.change.mean.assign(mu.data(), mu.data() + d);
    const Eigen::MatrixXd u = e.vectors.leftCols(k);
    tc.change.basis.assign(u.data(), u.data() + u.size());
    out.tables.push_back(std::move(tc));
    field_factors.push_back({f, u, mu});
  }

  RETURN_IF_ERROR_CTX(out.options.Validate(), "the compressed model");
  ASSIGN_OR_RETURN(out.model, worker::NewModel(out.options));
  CopyDenseByName(old, out.model.get());
  for (const LayerFactors& lf : factors) {
    ASSIGN_OR_RETURN(auto wa, Param(out.model.get(), lf.name + ".a.weight"));
    ASSIGN_OR_RETURN(auto ba, Param(out.model.get(), lf.name + ".a.bias"));
    ASSIGN_OR_RETURN(auto wb, Param(out.model.get(), lf.name + ".b.weight"));
    ASSIGN_OR_RETURN(auto bb, Param(out.model.get(), lf.name + ".b.bias"));
    wa = lf.wa.cast<float>();
    ba.col(0) = lf.ba.cast<float>();
    wb = lf.wb.cast<float>();
    bb.col(0) = lf.bb.cast<float>();
  }
  for (const FieldFactors& ff : field_factors) {
    const std::string name = "emb." + std::to_string(ff.field) + ".decoder";
    ASSIGN_OR_RETURN(auto w, Param(out.model.get(), name + ".weight"));
    ASSIGN_OR_RETURN(auto b, Param(out.model.get(), name + ".bias"));
    w = ff.u.cast<float>();
    b.col(0) = ff.mu.cast<float>();
  }
  return out;
}

}  // namespace ctrps::compression
