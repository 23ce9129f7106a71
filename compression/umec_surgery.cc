// UMEC's physical removal: the model without the selected groups.
#include <algorithm>

#include "compression/umec.h"

namespace ctrps::compression {

using worker::DenseParamInfo;
using worker::ModelOptions;

namespace {

std::vector<int> Complement(const std::vector<int>& dropped, int n) {
  std::vector<int> kept;
  std::vector<bool> gone(n, false);
  for (int g : dropped) gone[g] = true;
  for (int i = 0; i < n; ++i)
    if (!gone[i]) kept.push_back(i);
  return kept;
}

// Copies the kept rows and columns of a column-major matrix.
void CopySub(const float* src, int src_rows, const std::vector<int>& rows,
             const std::vector<int>& cols, float* dst) {
  size_t o = 0;
  for (int c : cols)
    for (int r : rows) dst[o++] = src[static_cast<size_t>(c) * src_rows + r];
}

std::vector<int> All(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

StatusOr<UmecSurgery> RemoveGroups(const worker::Model& old, const UmecNetwork& net,
                                   const UmecSelection& selection) {
  const ModelOptions& o = old.options();
  const auto& layers = net.layers();
  if (selection.dropped.size() != layers.size())
    return Status::InvalidArgument("the selection has " + std::to_string(selection.dropped.size()) +
                                   " layers, the network " + std::to_string(layers.size()));
  const std::string prefix = layers.front().layer.substr(0, layers.front().layer.rfind('.'));
  // Per layer of the main MLP: the input columns kept (empty: all).
  int num_main = 0;
  for (const worker::LinearLayerShape& s : worker::LinearLayers(o))
    if (s.layer.compare(0, prefix.size() + 1, prefix + ".") == 0) ++num_main;
  std::vector<std::vector<int>> cols_kept(num_main);
  {
    int l = 0;
    for (const worker::LinearLayerShape& s : worker::LinearLayers(o))
      if (s.layer.compare(0, prefix.size() + 1, prefix + ".") == 0) cols_kept[l++] = All(s.in);
  }
  UmecSurgery out;
  out.options = o;
  std::vector<int> fields_kept = All(o.num_fields);
  for (size_t i = 0; i < layers.size(); ++i) {
    const UmecLayer& L = layers[i];
    for (int g : selection.dropped[i])
      if (g < 0 || g >= L.groups())
        return Status::InvalidArgument(L.layer + " has no group " + std::to_string(g));
    std::vector<bool> gone_col(L.cols, false);
    for (int g : selection.dropped[i])
      for (int c = L.begin[g]; c < L.begin[g] + L.width[g]; ++c) gone_col[c] = true;
    cols_kept[L.index].clear();
    for (int c = 0; c < L.cols; ++c)
      if (!gone_col[c]) cols_kept[L.index].push_back(c);
    if (L.fields()) {
      for (int g : selection.dropped[i]) out.dropped_fields.push_back(L.field[g]);
      std::sort(out.dropped_fields.begin(), out.dropped_fields.end());
      fields_kept = Complement(out.dropped_fields, o.num_fields);
    }
  }
  // The new structure.
  for (int l = 0; l + 1 < num_main; ++l) {
    const int kept = static_cast<int>(cols_kept[l + 1].size());
    out.neurons_kept.push_back(kept);
  }
  if (static_cast<int>(o.mlp_dims.size()) != num_main - 1)
    return Status::Internal("the main MLP has " + std::to_string(num_main) + " layers for " +
                            std::to_string(o.mlp_dims.size()) + " hidden widths");
  out.options.mlp_dims = out.neurons_kept;
  if (!out.dropped_fields.empty()) {
    ModelOptions& n = out.options;
    n.num_fields = static_cast<int>(fields_kept.size());
    n.field_tables.clear();
    std::vector<int> emb, dec;
    for (int f : fields_kept) {
      n.field_tables.push_back(o.TableOf(f));
      if (!o.emb_dims.empty()) emb.push_back(o.emb_dims[f]);
      if (!o.emb_decode_dims.empty()) dec.push_back(o.emb_decode_dims[f]);
    }
    n.emb_dims = emb;
    n.emb_decode_dims = dec;
  }
  RETURN_IF_ERROR_CTX(out.options.Validate(), "the model after removing UMEC's groups");
  ASSIGN_OR_RETURN(out.model, worker::NewModel(out.options));

  // The dense weights of what stays.
  auto find = [&old](const std::string& name) -> const DenseParamInfo* {
    for (const DenseParamInfo& p : old.DenseParams())
      if (p.name == name) return &p;
    return nullptr;
  };
  const float* src_values = const_cast<worker::Model&>(old).dense_values();
  float* dst_values = out.model->dense_values();
  for (const DenseParamInfo& p : out.model->DenseParams()) {
    const DenseParamInfo* q = find(p.name);
    if (q == nullptr)
      return Status::Internal("removing UMEC's groups: the new model's " + p.name +
                              " is not in the old one");
    std::vector<int> rows = All(q->rows), cols = All(q->cols);
    const std::string& name = p.name;
    if (name.compare(0, prefix.size() + 1, prefix + ".") == 0) {
      const int l = std::stoi(name.substr(prefix.size() + 1));
      const bool weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
      if (l + 1 < num_main) rows = cols_kept[l + 1];  // this layer's kept neurons
      if (weight) cols = cols_kept[l];
    } else if (name == "fwfm.r") {
      rows = cols = fields_kept;
    }
    if (static_cast<int>(rows.size()) != p.rows || static_cast<int>(cols.size()) != p.cols)
      return Status::Internal("removing UMEC's groups: " + name + " is " + std::to_string(p.rows) +
                              " x " + std::to_string(p.cols) + " in the new model, the kept part " +
                              std::to_string(rows.size()) + " x " + std::to_string(cols.size()));
    CopySub(src_values + q->offset, q->rows, rows, cols, dst_values + p.offset);
  }
  return out;
}

}  // namespace ctrps::compression
