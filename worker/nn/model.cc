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
    if (NeedsEqualDims(type))
      for (int f = 1; f < num_fields; ++f)
        if (emb_dims[f] != emb_dims[0])
          return bad("needs equal embedding dims for its field interactions, but field " +
                     std::to_string(f) + " has " + std::to_string(emb_dims[f]) +
                     " and field 0 has " + std::to_string(emb_dims[0]));
  }
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
      if (bottom_mlp_dims.back() != emb_dims[0])
        return bad("the last bottom_mlp_dims entry (" + std::to_string(bottom_mlp_dims.back()) +
                   ") must equal the embedding dim (" + std::to_string(emb_dims[0]) + ")");
    }
    const int vectors = num_fields - num_dense_fields + (num_dense_fields > 0 ? 1 : 0);
    if (!dlrm_interaction_cat && vectors < 2)
      return bad("the dot interaction needs at least two vectors (bottom-MLP output plus "
                 "embedding fields), got " + std::to_string(vectors));
  }
  return Status::OK();
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
