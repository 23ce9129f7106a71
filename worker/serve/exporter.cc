#include "worker/serve/exporter.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "worker/serve/table_file.h"

namespace ctrps::worker::serve {
namespace fs = std::filesystem;

StatusOr<SortedRows> CollectTable(ps::EmbeddingClient* source, int table, int width) {
  std::vector<Key> keys;
  std::vector<float> rows;
  RETURN_IF_ERROR_CTX(source->ScanRows(table,
                                       [&](Key k, const float* r) {
                                         keys.push_back(k);
                                         rows.insert(rows.end(), r, r + width);
                                         return true;
                                       }),
                      "scanning table " + std::to_string(table));
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  SortedRows out;
  out.width = width;
  out.keys.resize(keys.size());
  out.rows.resize(rows.size());
  for (size_t i = 0; i < order.size(); ++i) {
    out.keys[i] = keys[order[i]];
    std::copy_n(rows.begin() + order[i] * width, width, out.rows.begin() + i * width);
  }
  for (size_t i = 1; i < out.keys.size(); ++i)
    if (out.keys[i] == out.keys[i - 1])
      return Status::Corruption("table " + std::to_string(table) + ": key " +
                                std::to_string(out.keys[i]) + " appears twice in the scan");
  return out;
}

BundleManifest DescribeModel(Model* model, const DataSpec& data) {
  BundleManifest m;
  m.model = model->options();
  m.data = data;
  const float* values = model->dense_values();
  for (const DenseParamInfo& p : model->DenseParams()) {
    DenseTensor t;
    t.name = p.name;
    t.rows = p.rows;
    t.cols = p.cols;
    t.values.assign(values + p.offset, values + p.offset + static_cast<size_t>(p.rows) * p.cols);
    m.dense.push_back(std::move(t));
  }
  return m;
}

SparseParts DeriveSparseParts(Model* model, const ExportOptions& options) {
  SparseParts sp;
  if (!options.sparse) return sp;
  const ModelOptions& mo = model->options();
  const float* values = model->dense_values();
  auto find = [&](const std::string& name) -> const DenseParamInfo* {
    for (const DenseParamInfo& p : model->DenseParams())
      if (p.name == name) return &p;
    return nullptr;
  };
  for (const LinearLayerShape& l : LinearLayers(mo)) {
    if (l.rank != 0) continue;
    const DenseParamInfo* p = find(l.layer + ".weight");
    if (p == nullptr) continue;
    SparseWeight w;
    w.layer = l.layer;
    w.csr = CsrMatrix::FromDense(values + p->offset, p->rows, p->cols);
    if (w.csr.density() <= options.sparse_weight_max_density) sp.weights.push_back(std::move(w));
  }
  if (mo.type == ModelType::kFwFM || mo.type == ModelType::kDeepFwFM) {
    const DenseParamInfo* p = find("fwfm.r");
    const int F = mo.num_fields;
    if (p != nullptr && F >= 2) {
      FieldPairList fp;
      fp.tensor = p->name;
      fp.num_fields = F;
      const float* r = values + p->offset;
      for (int i = 0; i < F; ++i)
        for (int j = i + 1; j < F; ++j) {
          // As FwFmInteraction symmetrises R: 0.5 (R + R^T).
          const float v = 0.5f * (r[static_cast<size_t>(j) * F + i] + r[static_cast<size_t>(i) * F + j]);
          if (v == 0.0f) continue;
          fp.first.push_back(static_cast<uint16_t>(i));
          fp.second.push_back(static_cast<uint16_t>(j));
          fp.values.push_back(v);
        }
      if (F <= 65536 &&
          fp.values.size() <= options.sparse_pairs_max_density * (double(F) * (F - 1) / 2))
        sp.pairs = std::move(fp);
    }
  }
  return sp;
}

StatusOr<std::string> BeginOutputDir(const std::string& dir) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::IOError("cannot create " + tmp + ": " + ec.message());
  return tmp;
}

Status CommitOutputDir(const std::string& tmp, const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) return Status::IOError("cannot rename " + tmp + " to " + dir + ": " + ec.message());
  return Status::OK();
}

Status WriteWholeFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  return Status::OK();
}

Status ExportBundle(Model* model, ps::EmbeddingClient* source, const DataSpec& data,
                    const ExportOptions& options) {
  if (options.out_dir.empty()) return Status::InvalidArgument("export: no output directory");
  if (static_cast<int>(data.field_names.size()) != model->options().num_fields)
    return Status::InvalidArgument("export: the data schema has " +
                                   std::to_string(data.field_names.size()) + " fields, the model " +
                                   std::to_string(model->options().num_fields));
  ASSIGN_OR_RETURN(std::string tmp, BeginOutputDir(options.out_dir));
  BundleManifest m = DescribeModel(model, data);
  m.source = options.source;
  m.unknown_keys = options.unknown_keys;
  const ModelOptions& mo = model->options();
  for (int f = 0; f < mo.num_fields; ++f) {
    const int table = mo.TableOf(f);  // a model with removed fields keeps its tables' ids
    ASSIGN_OR_RETURN(SortedRows t, CollectTable(source, table, model->RowWidth(f)));
    TableEntry e;
    e.file = "table_" + std::to_string(f) + ".emb";
    // New rows start with their linear weight (the part before the
    // embedding) at 0, as worker::Trainer::DeclareTables declares them.
    const int emb = mo.emb_dims.empty() ? 0 : mo.emb_dims[f];
    e.init_zero_prefix = t.width - emb;
    // Pruned rows: stored by their non-zeros when that pays. A row with
    // nothing left is dropped when unknown keys read as zeros (it scores the
    // same); under key-seeded unknown rows it stays, empty, since an absent
    // key would read a seeded row instead of the pruned zeros.
    bool sparse_rows = false;
    const bool drop_empty = options.unknown_keys.policy == UnknownKeyRows::Policy::kZero;
    if (options.sparse && SparseRowsSupported(t.width, options.table_dtype)) {
      uint64_t nnz = 0, kept = 0;
      for (size_t i = 0; i < t.keys.size(); ++i) {
        uint64_t row_nnz = 0;
        for (int k = 0; k < t.width; ++k) row_nnz += t.rows[i * t.width + k] != 0.0f;
        nnz += row_nnz;
        kept += row_nnz > 0 || !drop_empty;
      }
      sparse_rows =
          TableFileBytes(TableEntry::Layout::kSparseRows, options.table_keys,
                         options.table_dtype, kept, t.width, nnz) <=
          options.sparse_table_max_bytes_ratio *
              TableFileBytes(TableEntry::Layout::kDenseRows, options.table_keys,
                             options.table_dtype, t.keys.size(), t.width, 0);
    }
    if (sparse_rows) {
      RETURN_IF_ERROR(WriteSparseTableFile(tmp + "/" + e.file, table, t.width, options.table_dtype,
                                           t.keys.data(), t.keys.size(), t.rows.data(),
                                           drop_empty, &e, options.table_keys));
    } else {
      RETURN_IF_ERROR(WriteTableFile(tmp + "/" + e.file, table, t.width, options.table_dtype,
                                     t.keys.data(), t.keys.size(), t.rows.data(), &e,
                                     options.table_keys));
    }
    m.tables.push_back(e);
  }
  m.sparse = DeriveSparseParts(model, options);
  for (const auto& [name, contents] : options.extra_files)
    RETURN_IF_ERROR(WriteWholeFile(tmp + "/" + name, contents));
  RETURN_IF_ERROR(WriteBundleManifest(tmp, m));
  return CommitOutputDir(tmp, options.out_dir);
}

}  // namespace ctrps::worker::serve
