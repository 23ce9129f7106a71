#include <algorithm>
#include <string>

#include "common/keys.h"
#include "worker/nn/model.h"
#include "worker/nn/model_base.h"

namespace ctrps::worker {
namespace {

std::string Join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

bool NeedsEqualDims(ModelType t) {
  return t == ModelType::kFM || t == ModelType::kFwFM || t == ModelType::kDeepFM ||
         t == ModelType::kDeepFwFM || t == ModelType::kDLRM;
}

Status CheckWidths(const char* what, const std::vector<int>& dims) {
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] < 1 || dims[i] > (1 << 16))
      return Status::InvalidArgument(std::string(what) + "[" + std::to_string(i) + "] = " +
                                     std::to_string(dims[i]) + ", expected 1..65536");
  return Status::OK();
}

}  // namespace

const char* ModelTypeName(ModelType t) {
  switch (t) {
    case ModelType::kLR: return "LR";
    case ModelType::kFM: return "FM";
    case ModelType::kFwFM: return "FwFM";
    case ModelType::kDeepFM: return "DeepFM";
    case ModelType::kDeepFwFM: return "DeepFwFM";
    case ModelType::kDCNv2: return "DCN-v2";
    case ModelType::kDLRM: return "DLRM";
  }
  return "unknown";
}

Status ModelOptions::Validate() const {
  const std::string model = ModelTypeName(type);
  auto bad = [&](const std::string& m) { return Status::InvalidArgument(model + ": " + m); };
  if (num_fields < 1 || num_fields > kMaxTables)
    return bad("num_fields = " + std::to_string(num_fields) + ", expected 1.." +
               std::to_string(kMaxTables) + " (one key table per field)");
  if (!field_tables.empty()) {
    if (static_cast<int>(field_tables.size()) != num_fields)
      return bad("field_tables has " + std::to_string(field_tables.size()) +
                 " entries, expected none or one per field (" + std::to_string(num_fields) + ")");
    for (int f = 0; f < num_fields; ++f)
      if (field_tables[f] < 0 || field_tables[f] >= kMaxTables ||
          (f > 0 && field_tables[f] <= field_tables[f - 1]))
        return bad("field_tables must be ascending table ids in [0, " +
                   std::to_string(kMaxTables) + "), got [" + Join(field_tables) + "]");
  }
  if (type == ModelType::kLR) {
    for (int d : emb_dims)
      if (d != 0)
        return bad("LR has no embeddings; emb_dims must be empty or all 0, got [" +
                   Join(emb_dims) + "]");
    if (!emb_dims.empty() && static_cast<int>(emb_dims.size()) != num_fields)
      return bad("emb_dims has " + std::to_string(emb_dims.size()) + " entries for " +
                 std::to_string(num_fields) + " fields");
  } else {
    if (static_cast<int>(emb_dims.size()) != num_fields)
      return bad("emb_dims has " + std::to_string(emb_dims.size()) +
                 " entries, expected one per field (" + std::to_string(num_fields) + ")");
    RETURN_IF_ERROR_CTX(CheckWidths("emb_dims", emb_dims), model);
    if (!emb_decode_dims.empty()) {
      if (static_cast<int>(emb_decode_dims.size()) != num_fields)
        return bad("emb_decode_dims has " + std::to_string(emb_decode_dims.size()) +
                   " entries, expected none or one per field (" + std::to_string(num_fields) +
                   ")");
      for (int f = 0; f < num_fields; ++f) {
        const int d = emb_decode_dims[f];
        if (d == 0) continue;
        if (d < 0 || d > (1 << 16) || emb_dims[f] > d)
          return bad("field " + std::to_string(f) + " decodes " + std::to_string(emb_dims[f]) +
                     " stored coordinates to " + std::to_string(d) +
                     ", expected a decoded width of at least the stored width, at most 65536");
        if (type == ModelType::kDLRM && f < num_dense_fields)
          return bad("field " + std::to_string(f) + " is a dense field of the bottom MLP and "
                     "has no embedding to decode");
      }
    }
    if (NeedsEqualDims(type))
      for (int f = 1; f < num_fields; ++f)
        if (FieldDim(f) != FieldDim(0))
          return bad("needs equal embedding dims for its field interactions, but field " +
                     std::to_string(f) + " has " + std::to_string(FieldDim(f)) +
                     " and field 0 has " + std::to_string(FieldDim(0)));
  }
  if (type == ModelType::kLR && !emb_decode_dims.empty())
    for (int d : emb_decode_dims)
      if (d != 0) return bad("LR has no embeddings to decode; emb_decode_dims must be empty");
  RETURN_IF_ERROR_CTX(CheckWidths("mlp_dims", mlp_dims), model);
  if (!(dropout >= 0.0f && dropout < 1.0f))
    return bad("dropout = " + std::to_string(dropout) + ", expected [0, 1)");
  if (type == ModelType::kDCNv2) {
    if (cross_layers < 1 || cross_layers > 64)
      return bad("cross_layers = " + std::to_string(cross_layers) + ", expected 1..64");
    if (cross_rank < 0)
      return bad("cross_rank = " + std::to_string(cross_rank) + ", expected >= 0");
  }
  if (type == ModelType::kDLRM) {
    if (num_dense_fields < 0 || num_dense_fields >= num_fields)
      return bad("num_dense_fields = " + std::to_string(num_dense_fields) + ", expected 0.." +
                 std::to_string(num_fields - 1) + " (at least one embedding field)");
    if (num_dense_fields > 0) {
      if (bottom_mlp_dims.empty()) return bad("bottom_mlp_dims is empty but num_dense_fields > 0");
      RETURN_IF_ERROR_CTX(CheckWidths("bottom_mlp_dims", bottom_mlp_dims), model);
      if (bottom_mlp_dims.back() != FieldDim(0))
        return bad("the last bottom_mlp_dims entry (" + std::to_string(bottom_mlp_dims.back()) +
                   ") must equal the embedding dim (" + std::to_string(FieldDim(0)) + ")");
    }
    const int vectors = num_fields - num_dense_fields + (num_dense_fields > 0 ? 1 : 0);
    if (!dlrm_interaction_cat && vectors < 2)
      return bad("the dot interaction needs at least two vectors (bottom-MLP output plus "
                 "embedding fields), got " + std::to_string(vectors));
  }
  if (!low_rank.empty()) {
    ModelOptions full = *this;
    full.low_rank.clear();
    const std::vector<LinearLayerShape> layers = LinearLayers(full);
    for (size_t i = 0; i < low_rank.size(); ++i) {
      const LowRankLayer& r = low_rank[i];
      auto it = std::find_if(layers.begin(), layers.end(),
                             [&](const LinearLayerShape& l) { return l.layer == r.layer; });
      if (it == layers.end()) {
        std::string names;
        for (const auto& l : layers) names += (names.empty() ? "" : ", ") + l.layer;
        return bad("low-rank layer '" + r.layer + "' does not exist; the layers are: " +
                   (names.empty() ? "(none)" : names));
      }
      if (r.rank < 1 || r.rank > (1 << 16))
        return bad("low-rank layer '" + r.layer + "': rank " + std::to_string(r.rank) +
                   ", expected 1..65536");
      for (size_t j = 0; j < i; ++j)
        if (low_rank[j].layer == r.layer) return bad("layer '" + r.layer + "' is low-rank twice");
    }
  }
  return Status::OK();
}

const LowRankLayer* ModelOptions::RankOf(const std::string& layer) const {
  for (const LowRankLayer& r : low_rank)
    if (r.layer == layer) return &r;
  return nullptr;
}

std::vector<LinearLayerShape> LinearLayers(const ModelOptions& o) {
  std::vector<LinearLayerShape> out;
  auto add_mlp = [&](const std::string& prefix, std::vector<int> dims, bool relu_last) {
    const int num = static_cast<int>(dims.size()) - 1;
    for (int l = 0; l < num; ++l) {
      LinearLayerShape s;
      s.layer = prefix + "." + std::to_string(l);
      s.in = dims[l];
      s.out = dims[l + 1];
      s.hidden = l + 1 < num || relu_last;
      if (const LowRankLayer* r = o.RankOf(s.layer)) {
        s.rank = r->rank;
        s.relu_between = r->relu;
      }
      out.push_back(s);
    }
  };
  auto with = [](int in, const std::vector<int>& hidden, int last) {
    std::vector<int> d = {in};
    d.insert(d.end(), hidden.begin(), hidden.end());
    if (last > 0) d.push_back(last);
    return d;
  };
  int concat = 0;
  for (int f = 0; f < o.num_fields && !o.emb_dims.empty(); ++f) concat += o.FieldDim(f);
  switch (o.type) {
    case ModelType::kDeepFM:
    case ModelType::kDeepFwFM:
    case ModelType::kDCNv2:
      add_mlp("mlp", with(concat, o.mlp_dims, 1), false);
      break;
    case ModelType::kDLRM: {
      const int n = o.num_dense_fields, dim = o.FieldDim(n);
      if (n > 0) add_mlp("bottom_mlp", with(n, o.bottom_mlp_dims, 0), true);
      const int vectors = o.num_fields - n + (n > 0 ? 1 : 0);
      const int top_in =
          o.dlrm_interaction_cat ? vectors * dim : (n > 0 ? dim : 0) + vectors * (vectors - 1) / 2;
      add_mlp("top_mlp", with(top_in, o.mlp_dims, 1), false);
      break;
    }
    default:
      break;
  }
  return out;
}

Status ModelBase::SetLayerTaps(const std::vector<std::pair<std::string, MatrixF*>>& taps) {
  std::vector<std::vector<MatrixF*>> per_mlp(mlps_.size());
  for (size_t m = 0; m < mlps_.size(); ++m) per_mlp[m].assign(mlps_[m]->num_layers(), nullptr);
  for (const auto& [name, out] : taps) {
    bool found = false;
    for (size_t m = 0; m < mlps_.size() && !found; ++m)
      for (int l = 0; l < mlps_[m]->num_layers() && !found; ++l)
        if (mlps_[m]->layer_name(l) == name) {
          per_mlp[m][l] = out;
          found = true;
        }
    if (!found) return Status::NotFound("the model has no linear layer '" + name + "'");
  }
  for (size_t m = 0; m < mlps_.size(); ++m) {
    const bool any = std::any_of(per_mlp[m].begin(), per_mlp[m].end(),
                                 [](MatrixF* p) { return p != nullptr; });
    mlps_[m]->SetTaps(any ? per_mlp[m] : std::vector<MatrixF*>());
  }
  return Status::OK();
}

Status ModelBase::SetServingKernels(
    const std::vector<std::pair<std::string, const LinearKernel*>>& kernels) {
  std::vector<std::vector<const LinearKernel*>> per_mlp(mlps_.size());
  for (size_t m = 0; m < mlps_.size(); ++m) per_mlp[m].assign(mlps_[m]->num_layers(), nullptr);
  for (const auto& [name, kernel] : kernels) {
    bool found = false;
    for (size_t m = 0; m < mlps_.size() && !found; ++m)
      for (int l = 0; l < mlps_[m]->num_layers() && !found; ++l)
        if (mlps_[m]->layer_name(l) == name) {
          per_mlp[m][l] = kernel;
          found = true;
        }
    if (!found) return Status::NotFound("the model has no linear layer '" + name + "'");
  }
  for (size_t m = 0; m < mlps_.size(); ++m) {
    const bool any = std::any_of(per_mlp[m].begin(), per_mlp[m].end(),
                                 [](const LinearKernel* p) { return p != nullptr; });
    mlps_[m]->SetServingKernels(any ? per_mlp[m] : std::vector<const LinearKernel*>());
  }
  return Status::OK();
}

std::vector<MlpLayerRank> MlpRanks(const ModelOptions& options, const std::string& prefix,
                                   int num_layers) {
  std::vector<MlpLayerRank> ranks;
  for (int l = 0; l < num_layers; ++l)
    if (const LowRankLayer* r = options.RankOf(prefix + "." + std::to_string(l))) {
      ranks.resize(num_layers);
      ranks[l] = {r->rank, r->relu};
    }
  return ranks;
}

StatusOr<std::unique_ptr<Model>> NewModel(const ModelOptions& options) {
  RETURN_IF_ERROR_CTX(options.Validate(), "model options");
  switch (options.type) {
    case ModelType::kLR:
    case ModelType::kFM:
    case ModelType::kFwFM:
    case ModelType::kDeepFM:
    case ModelType::kDeepFwFM:
      return NewFactorModel(options);
    case ModelType::kDCNv2:
      return NewDcnV2Model(options);
    case ModelType::kDLRM:
      return NewDlrmModel(options);
  }
  return Status::InvalidArgument("unknown model type " +
                                 std::to_string(static_cast<int>(options.type)));
}

}  // namespace ctrps::worker
