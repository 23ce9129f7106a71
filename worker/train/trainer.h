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
#include "ps/worker_group.h"
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
  // Read the next batch and start its pull before computing the current one
  // (asynchronous modes: the next step's rows may miss this step's update).
  bool overlap_pull = false;
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
  // Seconds spent per phase (read includes waiting for the parser). pull:
  // sending requests and, unless overlapped, waiting for the rows; allreduce:
  // the dense-gradient allreduce; push: sending gradients and waiting for
  // their acknowledgement (the BSP barrier); wait: agreeing with the other
  // workers that every one has a batch, and waiting for an overlapped pull.
  double read_s = 0, pull_s = 0, compute_s = 0, allreduce_s = 0, push_s = 0, wait_s = 0;
};

class Trainer {
 public:
  // None of the pointers is owned; all must outlive the trainer.
  Trainer(TrainerOptions options, Model* model, DenseOptimizer* dense_optimizer,
          ps::EmbeddingClient* client, MetricsWriter* metrics);
  ~Trainer();

  // Distributed training: the other workers, for the dense-gradient
  // allreduce, step agreement, global evaluation and the replica checksum.
  // Not owned; null (the default) is a single worker.
  void SetWorkerGroup(ps::WorkerGroup* group) { group_ = group; }

  // Declares one table per field (table id = field index) on the client.
  [[nodiscard]] Status DeclareTables();

  // Trains on `train` for options.epochs passes; evaluates on `valid` (may be null).
  StatusOr<TrainResult> Train(BatchSource* train, BatchSource* valid);

  // Scores a stream once (no row creation, no dropout). If scores/labels are
  // non-null, every prediction is appended to them. With a worker group,
  // every worker scores its own stream and AUC/logloss are computed exactly
  // over all workers' predictions (gathered on worker 0, the result sent to
  // all); scores/labels then hold this worker's predictions only.
  StatusOr<EvalResult> Evaluate(BatchSource* data, int64_t max_rows,
                                std::vector<float>* scores = nullptr,
                                std::vector<float>* labels = nullptr);

  int64_t step() const { return step_; }

 private:
  struct Slot {
    Batch batch;
    SparseBatch sparse;
  };
  std::vector<ps::TableSlice> Slices(SparseBatch* sparse, bool grads);
  // Reads the next batch into `slot`; with a worker group, true only if
  // every worker has one (so all take the same number of steps).
  StatusOr<bool> NextBatch(BatchSource* source, Slot* slot, TrainResult* res);
  StatusOr<EvalResult> EvaluateAndLog(BatchSource* valid, const std::string& split);
  // Worker 0 computes the metrics over every worker's predictions.
  StatusOr<EvalResult> GlobalMetrics(const std::vector<float>& scores,
                                     const std::vector<float>& labels);
  // Fails unless every worker's dense parameters are bit-identical.
  Status CheckDenseReplicas(const std::string& when);

  TrainerOptions options_;
  Model* model_;
  DenseOptimizer* dense_optimizer_;
  ps::EmbeddingClient* client_;
  MetricsWriter* metrics_;
  ps::WorkerGroup* group_ = nullptr;
  SparseBatchBuilder builder_;
  Slot slots_[2];  // training: current and prefetched
  Slot eval_;
  VectorF logits_, dlogits_;
  std::vector<ps::TableSlice> slices_;
  int64_t step_ = 0;
};

// Mean sigmoid cross-entropy of `logits` against `labels`, and dLoss/dlogit
// (already divided by the batch size) into `dlogits`.
double SigmoidCrossEntropy(const VectorF& logits, const std::vector<float>& labels,
                           VectorF* dlogits);

}  // namespace ctrps::worker
