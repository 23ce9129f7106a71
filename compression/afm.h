// AFM: low-rank mimicking of output features (COMPRESSION.md section 2).
//
// A stage runs in three parts, which the caller strings together (the
// stage runner in launch/ does it, with the data, the servers and the
// fine-tuning):
//  1. AfmStatistics taps the chosen MLP layers of the frozen model and sums,
//     in float64, their pre-activation outputs and every chosen field's
//     looked-up embedding rows (weighted by how often each is looked up)
//     over one pass of the training data; CombineOverWorkers sums workers.
//  2. BuildAfm eigendecomposes the covariances and builds the compressed
//     model: each layer y = W x + b becomes A = U_k^T W, b_A = U_k^T b,
//     then B = U_k, b_B = (I - U_k U_k^T) mu; each field's rows become
//     c = (e - mu_f) U_f with the decoder e ~ U_f c + mu_f.
//  3. The caller rewrites each changed table where its rows live
//     (EmbeddingClient::RewriteTable with the outcome's RowBasisChange).
// The baseline (Basis::kWeightSvd) factors the weights instead: W = P S Q^T
// gives A = S_k Q_k^T, B = P_k, b_B = b; a table's basis is the leading
// eigenvectors of sum e e^T over its rows (TableGram), without centring.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "common/status.h"
#include "compression/moments.h"
#include "ps/client.h"
#include "ps/table_rewrite.h"
#include "worker/nn/model.h"

namespace ctrps::compression {

// A rank: fixed (rank > 0) or the smallest keeping `variance` of the trace.
struct RankSetting {
  int rank = 0;
  double variance = 0;  // (0, 1]
  bool relu = false;    // layers only: the "act" variant (ReLU between A and B)
  bool set() const { return rank > 0 || variance > 0; }
};

struct AfmPlan {
  enum class Basis { kOutputFeatures, kWeightSvd };
  Basis basis = Basis::kOutputFeatures;
  std::vector<std::pair<std::string, RankSetting>> layers;  // "mlp.1" -> rank
  RankSetting embeddings;                                   // every field with an embedding
  std::vector<std::pair<int, RankSetting>> fields;          // per-field overrides
  int64_t max_rows = 0;  // statistics rows per worker; 0 = one whole pass

  // Each field's setting (unset: the field is left as it is).
  std::vector<RankSetting> FieldSettings(const worker::ModelOptions& model) const;
};

// Refuses a plan the model cannot take, before any work, naming the
// setting: `where` prefixes every message ("compression.stages[0].afm").
[[nodiscard]] Status ValidateAfmPlan(const AfmPlan& plan, const worker::ModelOptions& model,
                                     const std::string& where);

class AfmStatistics {
 public:
  // Taps the plan's layers on `model` until destroyed. Plan validated.
  static StatusOr<std::unique_ptr<AfmStatistics>> Start(const AfmPlan& plan, worker::Model* model);
  ~AfmStatistics();

  // After the model's Forward on `batch`: adds the first `rows` examples.
  [[nodiscard]] Status Observe(const worker::SparseBatch& batch, int rows);
  // Sums over the workers (every worker then holds the same statistics).
  [[nodiscard]] Status Combine(ps::WorkerGroup* group);

  const Moments& layer(size_t i) const { return layers_[i]; }
  const Moments& field(int f) const { return fields_[f]; }
  double rows() const { return rows_; }

 private:
  AfmStatistics() = default;
  worker::Model* model_ = nullptr;
  std::vector<worker::MatrixF> taps_;
  std::vector<Moments> layers_;   // per plan layer
  std::vector<Moments> fields_;   // per field (dim 0 when not compressed)
  std::vector<int> offset_;       // per field: first embedding float of its rows
  std::vector<double> weight_;
  double rows_ = 0;
};

// The uncentred Gram matrix sum e e^T of a table's rows (floats
// [offset, offset + dim) of each), streamed from wherever they live and
// summed exactly in fixed point, so any order (any layout) gives the same
// bits. For the weight-SVD baseline.
StatusOr<Eigen::MatrixXd> TableGram(ps::EmbeddingClient* client, int table, int offset, int dim);

struct AfmOutcome {
  worker::ModelOptions options;          // the compressed structure
  std::unique_ptr<worker::Model> model;  // with its dense weights
  struct TableChange {
    int field = 0;
    ps::RowBasisChange change;
  };
  std::vector<TableChange> tables;
  struct Line {  // one layer or field of the stage's report
    std::string what;  // "mlp.1", "field 3"
    int width = 0, rank = 0;
    double kept = 0;     // fraction of the variance (or energy) kept
    double dropped = 0;  // sum of the dropped eigenvalues
  };
  std::vector<Line> report;
};

// Builds the compressed model from `old` (not changed). stats: the
// statistics pass (kOutputFeatures); grams: per field, TableGram of its
// rows or empty (kWeightSvd; fields without a setting may be empty).
StatusOr<AfmOutcome> BuildAfm(const AfmPlan& plan, const worker::Model& old,
                              const AfmStatistics* stats, const std::vector<Eigen::MatrixXd>& grams);

// Copies every dense parameter of `from` into `to` whose name and shape
// `to` also has; returns the names of `to`'s parameters it did not set.
std::vector<std::string> CopyDenseByName(const worker::Model& from, worker::Model* to);

}  // namespace ctrps::compression
