#include "worker/serve/engine.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "common/check.h"
#include "storage/row_init.h"
#include "worker/serve/table_file.h"

namespace ctrps::worker::serve {

// What every engine forked from one bundle shares: the manifest (dense
// values included) and the mapped tables.
struct InferenceEngine::Shared {
  BundleManifest manifest;
  std::vector<MappedTable> tables;
  bool init_unknown = false;                  // unknown keys get key-seeded rows, not zeros
  std::vector<storage::RowInitOptions> init;  // per table
  std::unique_ptr<const SparseFactorPath> sparse;  // pruned factor models
};

namespace {

std::unique_ptr<Model> MustNewModel(const ModelOptions& o) {
  auto model = NewModel(o);
  CHECK(model.ok()) << model.status().ToString();  // validated by ReadBundleManifest
  return std::move(*model);
}

std::vector<int> RowWidths(const Model& model) {
  std::vector<int> w(model.options().num_fields);
  for (size_t f = 0; f < w.size(); ++f) w[f] = model.RowWidth(static_cast<int>(f));
  return w;
}

// Copies the manifest's dense tensors into the model by name.
Status LoadDense(const BundleManifest& m, Model* model) {
  std::unordered_map<std::string, const DenseTensor*> by_name;
  for (const DenseTensor& t : m.dense) by_name[t.name] = &t;
  if (by_name.size() != model->DenseParams().size())
    return Status::Corruption("the bundle has " + std::to_string(by_name.size()) +
                              " dense tensors, the model " +
                              std::to_string(model->DenseParams().size()));
  for (const DenseParamInfo& p : model->DenseParams()) {
    auto it = by_name.find(p.name);
    if (it == by_name.end())
      return Status::Corruption("dense tensor '" + p.name + "' is missing from the bundle");
    const DenseTensor& t = *it->second;
    if (t.rows != p.rows || t.cols != p.cols)
      return Status::Corruption("dense tensor '" + p.name + "' is " + std::to_string(t.rows) +
                                " x " + std::to_string(t.cols) + ", the model expects " +
                                std::to_string(p.rows) + " x " + std::to_string(p.cols));
    std::copy(t.values.begin(), t.values.end(), model->dense_values() + p.offset);
  }
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<InferenceEngine>> InferenceEngine::Open(const std::string& dir) {
  auto shared = std::make_shared<Shared>();
  ASSIGN_OR_RETURN(shared->manifest, ReadBundleManifest(dir));
  auto model = NewModel(shared->manifest.model);
  if (!model.ok()) return model.status().WithContext(dir);
  const std::vector<int> widths = RowWidths(**model);
  for (const TableEntry& e : shared->manifest.tables) {
    const size_t f = shared->tables.size();  // tables come in field order
    if (f >= widths.size() || e.width != widths[f])
      return Status::Corruption(dir + "/" + kBundleModelFile + ": table " +
                                std::to_string(e.table_id) + " has width " +
                                std::to_string(e.width) + ", the model's rows are " +
                                (f < widths.size() ? std::to_string(widths[f]) : "-") + " wide");
    ASSIGN_OR_RETURN(MappedTable t, MappedTable::Open(dir + "/" + e.file, e));
    shared->tables.push_back(std::move(t));
    storage::RowInitOptions init;
    init.seed = shared->manifest.unknown_keys.init_seed;
    init.scale = shared->manifest.unknown_keys.init_scale;
    init.zero_prefix = e.init_zero_prefix;
    shared->init.push_back(init);
  }
  shared->init_unknown =
      shared->manifest.unknown_keys.policy == UnknownKeyRows::Policy::kKeySeededInit;
  const bool pruned =
      !shared->manifest.sparse.empty() ||
      std::any_of(shared->manifest.tables.begin(), shared->manifest.tables.end(),
                  [](const TableEntry& t) { return t.layout == TableEntry::Layout::kSparseRows; });
  if (pruned) shared->sparse = SparseFactorPath::Build(shared->manifest);
  std::unique_ptr<InferenceEngine> engine(new InferenceEngine(shared));
  RETURN_IF_ERROR_CTX(LoadDense(shared->manifest, engine->model_.get()),
                      dir + "/" + kBundleModelFile);
  engine->model_->PrepareForServing();
  RETURN_IF_ERROR_CTX(engine->InstallKernels(engine->model_.get()), dir + "/" + kBundleModelFile);
  return engine;
}

InferenceEngine::InferenceEngine(std::shared_ptr<const Shared> shared)
    : shared_(std::move(shared)),
      manifest_(&shared_->manifest),
      model_(MustNewModel(manifest_->model)),
      builder_(RowWidths(*model_)) {
  const int F = num_fields();
  found_.assign(F, -1);
  inline_lo_.assign(F, 0);
  inline_hi_.assign(F, 0);
  row_.batch_size = 1;
  row_.fields.resize(F);
  row_.values.resize(F, 1);
  for (int f = 0; f < F; ++f) {
    FieldRows& fr = row_.fields[f];
    fr.unique_keys.assign(1, 0);
    fr.index.assign(1, 0);
    fr.rows.resize(model_->RowWidth(f), 1);
  }
  if (shared_->sparse) {
    shared_->sparse->InitScratch(&sparse_scratch_);
    const SparseFactorPath& sp = *shared_->sparse;
    sparse_rows_.assign(std::max(static_cast<size_t>(kSparseTile) * F * sp.row_width(),
                                 static_cast<size_t>(F) * sp.row_stride() + 8),
                        0.0f);
  }
}

bool InferenceEngine::sparse_path() const { return shared_->sparse != nullptr; }

std::string InferenceEngine::DescribeSparsePath() const {
  if (shared_->sparse) return shared_->sparse->Describe();
  if (kernels_.empty()) return "none (dense model)";
  std::string s = "dense model with sparse kernels for";
  for (const auto& k : kernels_)
    s += " " + std::to_string(k->csr().rows) + "x" + std::to_string(k->csr().cols) + " (density " +
         std::to_string(k->csr().density()) + ")";
  return s;
}

InferenceEngine::~InferenceEngine() = default;

Status InferenceEngine::InstallKernels(Model* model) {
  const SparseParts& sp = manifest_->sparse;
  if (shared_->sparse || sp.weights.empty()) return Status::OK();
  if (kernels_.empty()) {
    for (const SparseWeight& w : sp.weights) {
      if (w.csr.density() > kTileMaxDensity) continue;
      const DenseTensor* bias = nullptr;
      for (const DenseTensor& t : manifest_->dense)
        if (t.name == w.layer + ".bias") bias = &t;
      if (bias == nullptr || bias->rows != w.csr.rows || bias->cols != 1)
        return Status::Corruption("sparse.weights '" + w.layer + "' has no bias '" + w.layer +
                                  ".bias' of " + std::to_string(w.csr.rows) + " x 1");
      kernels_.push_back(std::make_unique<SparseLinearKernel>(w.csr, bias->values));
    }
  }
  std::vector<std::pair<std::string, const LinearKernel*>> named;
  size_t k = 0;
  for (const SparseWeight& w : sp.weights)
    if (w.csr.density() <= kTileMaxDensity) named.push_back({w.layer, kernels_[k++].get()});
  return model->SetServingKernels(named).WithContext("sparse.weights");
}

std::unique_ptr<InferenceEngine> InferenceEngine::Fork() const {
  std::unique_ptr<InferenceEngine> e(new InferenceEngine(shared_));
  std::copy_n(model_->dense_values(), model_->dense_size(), e->model_->dense_values());
  e->model_->PrepareForServing();
  const Status st = e->InstallKernels(e->model_.get());
  CHECK(st.ok()) << st.ToString();  // installed at Open
  return e;
}

bool InferenceEngine::LookupRow(int field, Key key, float* out) const {
  const MappedTable& t = shared_->tables[field];
  const int64_t i = t.Find(key);
  if (i >= 0) {
    t.ReadRow(static_cast<uint64_t>(i), out);
    return true;
  }
  UnknownRow(field, key, out);
  return false;
}

void InferenceEngine::UnknownRow(int field, Key key, float* out) const {
  const MappedTable& t = shared_->tables[field];
  if (shared_->init_unknown)
    storage::InitRow(shared_->init[field], key, t.width(), /*slot_floats=*/0, out);
  else
    std::fill_n(out, t.width(), 0.0f);
}

template <bool padded, typename Out>
void InferenceEngine::LookupRows(const Key* keys, Out out) {
  const int F = num_fields();
  const std::vector<MappedTable>& tables = shared_->tables;
  // Stages, each over every field so the fields' cache misses overlap.
  // Sparse-row tables (inline rows): the bucket's offset, then its rows
  // (key, mask and values side by side), read from cache. Dense tables: the
  // bucket, then its keys and first row, then the found row.
  for (int f = 0; f < F; ++f)
    if (tables[f].inline_rows())
      tables[f].PrefetchInlineBucket(keys[f]);
    else
      tables[f].PrefetchBucket(keys[f]);
  for (int f = 0; f < F; ++f)
    if (tables[f].inline_rows())
      tables[f].PrefetchInlineRows(keys[f], &inline_lo_[f], &inline_hi_[f]);
    else
      tables[f].PrefetchKeys(keys[f]);
  for (int f = 0; f < F; ++f)
    if (!tables[f].inline_rows()) {
      found_[f] = tables[f].Find(keys[f]);
      if (found_[f] >= 0) tables[f].PrefetchRow(static_cast<uint64_t>(found_[f]));
    }
  for (int f = 0; f < F; ++f) {
    bool found;
    if (tables[f].inline_rows()) {
      found = tables[f].ReadInline(keys[f], inline_lo_[f], inline_hi_[f], out(f), padded);
    } else {
      found = found_[f] >= 0;
      if (found) tables[f].ReadRow(static_cast<uint64_t>(found_[f]), out(f));
    }
    if (!found) {
      UnknownRow(f, keys[f], out(f));
      ++unknown_keys_;
    }
  }
}

void InferenceEngine::PredictBatchLogits(const Batch& batch, float* logits) {
  const int B = batch.size();
  if (B == 0) return;
  CHECK_EQ(batch.num_fields, num_fields()) << "batch parsed for another model";
  const int F = num_fields();
  if (shared_->sparse) {
    const SparseFactorPath& sp = *shared_->sparse;
    const size_t W = static_cast<size_t>(sp.row_width());
    for (int b0 = 0; b0 < B; b0 += kSparseTile) {
      const int n = std::min(kSparseTile, B - b0);
      for (int t = 0; t < n; ++t) {
        const Key* keys = &batch.keys[static_cast<size_t>(b0 + t) * F];
        float* rows = sparse_rows_.data() + static_cast<size_t>(t) * F * W;
        LookupRows(keys, [&](int f) { return rows + f * W; });
      }
      sp.Tile(sparse_rows_.data(), &batch.values[static_cast<size_t>(b0) * F], n,
              &sparse_scratch_, logits + b0);
    }
    return;
  }
  builder_.Build(batch, &batch_);
  for (int f = 0; f < F; ++f) {
    FieldRows& fr = batch_.fields[f];
    const MappedTable& t = shared_->tables[f];
    const int U = static_cast<int>(fr.unique_keys.size());
    float* rows = fr.rows.data();
    const int w = t.width();
    missing_.clear();
    for (int u = 0; u < U; ++u)
      if (!LookupRow(f, fr.unique_keys[u], rows + static_cast<size_t>(u) * w))
        missing_.push_back(u);
    // Count examples, not unique keys, so batched and single-row agree.
    if (!missing_.empty()) {
      missing_flag_.assign(U, 0);
      for (int u : missing_) missing_flag_[u] = 1;
      for (int b = 0; b < B; ++b) unknown_keys_ += missing_flag_[fr.index[b]];
    }
  }
  model_->Forward(batch_, /*training=*/false, &logits_);
  std::copy_n(logits_.data(), B, logits);
}

void InferenceEngine::PredictBatch(const Batch& batch, float* probabilities) {
  PredictBatchLogits(batch, probabilities);
  for (int b = 0; b < batch.size(); ++b) probabilities[b] = Sigmoid(probabilities[b]);
}

float InferenceEngine::PredictRowLogit(const Key* keys, const float* values) {
  const int F = num_fields();
  if (shared_->sparse) {
    const int S = shared_->sparse->row_stride();
    float* rows = sparse_rows_.data();
    LookupRows<true>(keys, [&](int f) { return rows + f * S; });
    return shared_->sparse->Row(rows, values, &sparse_scratch_);
  }
  for (int f = 0; f < F; ++f) {
    row_.fields[f].unique_keys[0] = keys[f];
    row_.values(f, 0) = values[f];
  }
  LookupRows(keys, [&](int f) { return row_.fields[f].rows.data(); });
  if (!row_model_) {  // first single-row call: its own model, so its buffers
                      // (sized for one example) and the batch model's never resize
    row_model_ = MustNewModel(manifest_->model);
    std::copy_n(model_->dense_values(), model_->dense_size(), row_model_->dense_values());
    row_model_->PrepareForServing();
    const Status st = InstallKernels(row_model_.get());
    CHECK(st.ok()) << st.ToString();  // installed at Open
  }
  row_model_->Forward(row_, /*training=*/false, &row_logits_);
  return row_logits_[0];
}

float InferenceEngine::PredictRow(const Key* keys, const float* values) {
  return Sigmoid(PredictRowLogit(keys, values));
}

}  // namespace ctrps::worker::serve
