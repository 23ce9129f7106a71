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
    ASSIGN_OR_RETURN(SortedRows t, CollectTable(source, f, model->RowWidth(f)));
    TableEntry e;
    e.file = "table_" + std::to_string(f) + ".emb";
    // New rows start with their linear weight (the part before the
    // embedding) at 0, as worker::Trainer::DeclareTables declares them.
    const int emb = mo.emb_dims.empty() ? 0 : mo.emb_dims[f];
    e.init_zero_prefix = t.width - emb;
    RETURN_IF_ERROR(WriteTableFile(tmp + "/" + e.file, f, t.width, options.table_dtype,
                                   t.keys.data(), t.keys.size(), t.rows.data(), &e));
    m.tables.push_back(e);
  }
  for (const auto& [name, contents] : options.extra_files)
    RETURN_IF_ERROR(WriteWholeFile(tmp + "/" + name, contents));
  RETURN_IF_ERROR(WriteBundleManifest(tmp, m));
  return CommitOutputDir(tmp, options.out_dir);
}

}  // namespace ctrps::worker::serve
