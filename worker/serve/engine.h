// The native inference engine: loads a serving bundle (bundle.proto) and
// scores examples, batched or one row at a time.
//
// Tables are memory-mapped (sparse-row tables of pruned models are held as
// inline rows in memory instead, table_file.h) and shared (read-only) by
// every engine forked from the same bundle; each engine owns its model
// buffers, so one engine per serving thread: an engine is not thread-safe,
// Fork() is cheap.
//
// Allocation: single-row prediction allocates nothing after the first call
// (it runs on its own copy of the model, sized for one example); batched
// prediction allocates nothing once warm for a given batch size (Eigen
// reallocates its activations when the batch size changes). Both hold with
// one compute thread (worker::SetNumThreads(1), the serving set-up: one
// engine per thread); Eigen's multi-threaded GEMM allocates on each call.
//
// Compressed models (bundle format 2) run as worker::Model runs them, after
// Model::PrepareForServing: embedding decoders that feed an MLP's first
// layer are folded into it once at load (so a row touches only the stored
// coordinates there), interactions that need the full vectors decode them,
// and low-rank layers run as their two thin GEMMs.
//
// Pruned models (bundle format 3, DeepLight): a factor-family model (LR, FM,
// FwFM, DeepFM, DeepFwFM without compressed structure) is scored by the
// sparse path (sparse_engine.h): FwFM over the surviving pairs only, MLP
// layers through sparse kernels where their density pays, rows read from
// sparse-row tables by their non-zeros; it equals the dense engine on the
// same weights up to float summation order. Other model types (DCN-v2, DLRM,
// compressed models) run the dense model with their pruned MLP layers
// computed by sparse kernels (Model::SetServingKernels); sparse-row tables
// read sparse everywhere.
//
// A key absent from its table reads as the bundle's UnknownKeyRows say: an
// all-zero row (a feature never seen in training adds nothing), or the
// key-seeded initial row training would have created, which is what
// training-time evaluation of the saved model reads (ps::EmbeddingClient::Pull
// with training = false), so such a bundle scores exactly as `ctrps eval` of
// its model. unknown_keys() counts them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"
#include "worker/serve/sparse_engine.h"
#include "worker/train/sparse_batch_builder.h"

namespace ctrps::worker::serve {

class MappedTable;

class InferenceEngine {
 public:
  // Reads dir/model.pb, maps and verifies every table file, builds the
  // model and loads its dense weights by name. Errors name the bad file.
  static StatusOr<std::unique_ptr<InferenceEngine>> Open(const std::string& dir);
  ~InferenceEngine();

  // A new engine over the same tables and weights (for another thread).
  std::unique_ptr<InferenceEngine> Fork() const;

  const BundleManifest& manifest() const { return *manifest_; }
  const DataSpec& data() const { return manifest_->data; }
  int num_fields() const { return manifest_->model.num_fields; }

  // Logits and click probabilities of every example of `batch` (its keys and
  // values; labels are ignored). out must hold batch.size() floats.
  void PredictBatchLogits(const Batch& batch, float* logits);
  void PredictBatch(const Batch& batch, float* probabilities);

  // One example: keys[f], values[f] for f < num_fields(). No allocation
  // after the first call (which copies the dense weights once).
  float PredictRowLogit(const Key* keys, const float* values);
  float PredictRow(const Key* keys, const float* values);

  // (example, field) pairs whose key was absent from its table, since Open/Fork.
  uint64_t unknown_keys() const { return unknown_keys_; }

  // Whether predictions take the sparse path; a one-line description of it.
  bool sparse_path() const;
  std::string DescribeSparsePath() const;

 private:
  struct Shared;
  explicit InferenceEngine(std::shared_ptr<const Shared> shared);
  // Field `field`'s row of `key` into out; false (and the bundle's
  // unknown-key row) if the key is absent.
  bool LookupRow(int field, Key key, float* out) const;
  // The unknown-key row of `key` in field's table.
  void UnknownRow(int field, Key key, float* out) const;
  // One example's rows: field f's into out(f), the fields' lookups staged
  // so their cache misses overlap; counts unknown keys.
  // padded: sparse rows are written in whole 8-float chunks (the sparse
  // path's single-row layout, SparseFactorPath::row_stride()).
  template <bool padded = false, typename Out>
  void LookupRows(const Key* keys, Out out);

  std::shared_ptr<const Shared> shared_;
  const BundleManifest* manifest_ = nullptr;
  std::unique_ptr<Model> model_;      // batches
  std::unique_ptr<Model> row_model_;  // single rows (same weights), made on first use
  SparseBatchBuilder builder_;
  SparseBatch batch_, row_;
  VectorF logits_, row_logits_;
  std::vector<int> missing_;  // unique keys of a field that were absent
  std::vector<uint8_t> missing_flag_;
  std::vector<int64_t> found_;     // LookupRows: per field, the row index or -1
  std::vector<uint64_t> inline_lo_, inline_hi_;  // LookupRows: inline rows' buckets
  uint64_t unknown_keys_ = 0;
  // Pruned MLP layers of other models: kernels set on model_ and row_model_.
  [[nodiscard]] Status InstallKernels(Model* model);
  std::vector<std::unique_ptr<SparseLinearKernel>> kernels_;
  // The sparse path's buffers (unused without one).
  SparseFactorPath::Scratch sparse_scratch_;
  std::vector<float> sparse_rows_;  // kSparseTile x F rows, or one example's (row_stride apart)
};

inline float Sigmoid(float logit) { return 1.0f / (1.0f + std::exp(-logit)); }

}  // namespace ctrps::worker::serve
