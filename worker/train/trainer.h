// The training loop on one worker: pull rows, forward, backward, dense
// optimizer step, push gradients; periodic and per-epoch evaluation with
// exact AUC and logloss, early stopping, progress and JSON-lines metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics_writer.h"
#include "common/status.h"
#include "ps/client.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/train/sparse_batch_builder.h"

namespace ctrps::worker {

class DenseOptimizer;

// A restartable stream of batches (the data readers implement it).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills `batch` with the next batch of this pass; returns false at its end.
  virtual StatusOr<bool> Next(Batch* batch) = 0;
  // Starts the next pass (epoch) from the beginning.
  virtual Status Rewind() = 0;
  // Rows skipped as malformed so far, by reason ("" if none).
  virtual std::string SkippedSummary() const = 0;
  // What was read so far (lines, bytes, rows, skipped), for the run's log.
  virtual std::string ReadSummary() const { return ""; }
  // Fraction of the current pass consumed, in [0, 1], or < 0 if unknown.
  virtual double PassFraction() const { return -1; }
};

struct TrainerOptions {
  int epochs = 1;
  int64_t eval_every_steps = 0;         // 0: evaluate only at epoch ends
  int early_stopping_patience = 0;      // evaluations without gain; 0 = off
  double early_stopping_min_delta = 1e-4;
  int64_t max_steps = 0;                // 0 = no limit
  int64_t max_eval_rows = 0;            // 0 = whole validation set
  double log_interval_s = 10.0;
  float embedding_init_scale = 0.01f;
  uint64_t embedding_seed = 1;
  ps::SparseOptimizerOptions sparse_optimizer;
  Status Validate() const;
};

struct EvalResult {
  int64_t rows = 0;
  double auc = 0, logloss = 0;
  double mean_prediction = 0, mean_label = 0;
};

struct TrainResult {
  int64_t steps = 0;
  int64_t samples = 0;
  int epochs_completed = 0;
  double train_seconds = 0;
  double samples_per_second = 0;
  double final_train_loss = 0;   // mean loss over the last logging window
  bool early_stopped = false;
  EvalResult last_valid, best_valid;
  bool has_valid = false;
  // Seconds spent per phase (read includes waiting for the parser).
  double read_s = 0, pull_s = 0, compute_s = 0, push_s = 0;
};

class Trainer {
 public:
  // None of the pointers is owned; all must outlive the trainer.
  Trainer(TrainerOptions options, Model* model, DenseOptimizer* dense_optimizer,
          ps::EmbeddingClient* client, MetricsWriter* metrics);
  ~Trainer();

  // Declares one table per field (table id = field index) on the client.
  [[nodiscard]] Status DeclareTables();

  // Trains on `train` for options.epochs passes; evaluates on `valid` (may be null).
  StatusOr<TrainResult> Train(BatchSource* train, BatchSource* valid);

  // Scores a stream once (no row creation, no dropout). If scores/labels are
  // non-null, every prediction is appended to them.
  StatusOr<EvalResult> Evaluate(BatchSource* data, int64_t max_rows,
                                std::vector<float>* scores = nullptr,
                                std::vector<float>* labels = nullptr);

  int64_t step() const { return step_; }

 private:
  Status PullRows(bool training);
  Status PushGrads();
  StatusOr<EvalResult> EvaluateAndLog(BatchSource* valid, const std::string& split);

  TrainerOptions options_;
  Model* model_;
  DenseOptimizer* dense_optimizer_;
  ps::EmbeddingClient* client_;
  MetricsWriter* metrics_;
  SparseBatchBuilder builder_;
  SparseBatch sparse_;
  Batch batch_;
  VectorF logits_, dlogits_;
  std::vector<ps::TableSlice> slices_;
  int64_t step_ = 0;
};

// Mean sigmoid cross-entropy of `logits` against `labels`, and dLoss/dlogit
// (already divided by the batch size) into `dlogits`.
double SigmoidCrossEntropy(const VectorF& logits, const std::vector<float>& labels,
                           VectorF* dlogits);

}  // namespace ctrps::worker
