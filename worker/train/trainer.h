// The training loop on one worker: pull rows, forward, backward, dense
// optimizer step, push gradients; periodic and per-epoch evaluation with
// exact AUC and logloss, early stopping, progress and JSON-lines metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics_writer.h"
#include "common/status.h"
#include "ps/client.h"
#include "ps/worker_group.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/train/checkpoint.h"
#include "worker/train/sparse_batch_builder.h"
#include "worker/train/trainer_hook.h"

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
  // The same as named counts for metrics ("lines_read", "rows_read",
  // "lines_skipped", "skipped_<reason>"); empty if the source does not count.
  virtual std::vector<std::pair<std::string, int64_t>> ReadCounters() const { return {}; }
  // Fraction of the current pass consumed, in [0, 1], or < 0 if unknown.
  virtual double PassFraction() const { return -1; }
  // Checkpoints: where the stream is (after the last batch Next returned),
  // as opaque bytes, and a return to such a position in the same pass (on a
  // stream over the same data with the same options).
  virtual StatusOr<std::string> SavePosition() const {
    return Status::Unimplemented("this batch source cannot save its position");
  }
  [[nodiscard]] virtual Status RestorePosition(const std::string& position) {
    return Status::Unimplemented("this batch source cannot restore a position");
  }
};

struct TrainerOptions {
  int epochs = 1;
  int64_t eval_every_steps = 0;         // 0: evaluate only at epoch ends
  int early_stopping_patience = 0;      // evaluations without gain; 0 = off
  // A fresh run (not a resume) evaluates before its first step, so with
  // early stopping the starting model is a candidate for the best one
  // (fine-tuning never ends worse on validation than it started).
  bool evaluate_at_start = false;
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
  CheckpointOptions checkpoint;  // off unless checkpoint.dir is set
  // Early stopping keeps the best evaluated model (dense values and
  // embedding rows, in checkpoint format) here, and restores it when
  // training ends, so the test evaluation and the saved model are the
  // best one's. Empty: checkpoint.dir/best when checkpoints are on (a
  // resume finds it there), else no snapshot (the last model is kept).
  // Under mpirun it must be on a filesystem every rank sees.
  std::string best_model_dir;
  Status Validate() const;
  std::string BestModelDir() const {
    if (!best_model_dir.empty()) return best_model_dir;
    return checkpoint.enabled() ? checkpoint.dir + "/best" : std::string();
  }
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
  // Early stopping: the step of the best evaluation, and whether the model
  // now holds that step's weights (restored when training went on past it).
  int64_t best_valid_step = -1;
  bool restored_best = false;
  bool has_valid = false;
  // Seconds spent per phase (read includes waiting for the parser). pull:
  // sending requests and, unless overlapped, waiting for the rows; allreduce:
  // the dense-gradient allreduce; push: sending gradients and waiting for
  // their acknowledgement (the BSP barrier); wait: agreeing with the other
  // workers that every one has a batch, and waiting for an overlapped pull.
  double read_s = 0, pull_s = 0, compute_s = 0, allreduce_s = 0, push_s = 0, wait_s = 0;
  // Checkpoints of this run (periodic and final) that were committed, and
  // that failed (a full disk, say: training went on, the earlier ones stay).
  int checkpoints_written = 0, checkpoints_failed = 0;
  // The checkpoint taken when training ended failed (why): a resume would
  // repeat work, so the job reports an error once the model is saved.
  std::string final_checkpoint_error;
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
  // A compression method run inside training (worker/train/trainer_hook.h);
  // not owned; null (the default) is none.
  void SetHook(TrainerHook* hook) { hook_ = hook; }

  // Declares one table per field (table id = field index) on the client.
  [[nodiscard]] Status DeclareTables();
  // The configs DeclareTables declares: field f's rows are the model's
  // RowWidth(f) floats, with the trainer's initialisation and optimizer.
  std::vector<ps::TableConfig> TableConfigs() const;

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

  // Runs the frozen model over `data` once from its start (rows pulled
  // without creating any, no dropout), calling fn(batch, rows) after each
  // Forward: the statistics pass of a compression stage (taps set on the
  // model). At most max_rows rows per worker (0 = all). This worker's data
  // only; combining over workers is the caller's collective.
  using BatchObserver = std::function<Status(const SparseBatch& batch, int rows)>;
  [[nodiscard]] Status ObservePass(BatchSource* data, int64_t max_rows, const BatchObserver& fn);

  // Progress of Evaluate and ObservePass on stderr (common/progress.h: a bar
  // with rate and ETA on a terminal, a log line every log_interval_s
  // otherwise), labelled `label` ("eval", "[afm] statistics"). Empty, the
  // default: silent, as evaluations inside training are (training shows
  // its own progress).
  void ShowPassProgress(std::string label) { pass_progress_label_ = std::move(label); }

  int64_t step() const { return step_; }

  // Resumes from a checkpoint before Train (tables declared). `requested`:
  // a checkpoint directory, or a checkpoint root (its newest whole
  // checkpoint), or empty: options.checkpoint.dir's newest if auto_resume.
  // A corrupt candidate is reported and the previous whole one used, except
  // when `requested` names one checkpoint. Starting afresh in a checkpoint
  // dir that already holds checkpoints (auto_resume off, or none of them
  // usable) is refused: the new run's checkpoints would mix with them.
  // Unfinished "ckpt-N.tmp" directories in options.checkpoint.dir (an
  // earlier attempt killed mid-commit) are never checkpoints: removed.
  // Worker 0 chooses; every worker restores dense weights, optimizer
  // state, its reader position and RNG; the servers (or the local store)
  // load the rows. Sets *resumed_from to the checkpoint used ("" when
  // starting fresh).
  [[nodiscard]] Status Resume(const std::string& requested, bool auto_resume,
                              std::string* resumed_from);

  // Checkpoints written by this trainer, those that failed, and the
  // training pause they took.
  int checkpoints_written() const { return checkpoints_written_; }
  int checkpoints_failed() const { return checkpoints_failed_; }
  double checkpoint_seconds() const { return checkpoint_seconds_; }
  // The training pause of each checkpoint attempted, in seconds.
  const std::vector<double>& checkpoint_pauses() const { return checkpoint_pauses_; }

 private:
  // Averages the dense gradients over the workers, weighted by rows.
  Status ReduceDenseGrads(int batch_rows);
  std::vector<float> reduce_buf_;
  bool joined_empty_ = false;  // this worker's partition ran out; it is joining with empty batches

  struct Slot {
    Batch batch;
    SparseBatch sparse;
    std::string position_before;  // the stream's position before this batch (overlap + checkpoints)
  };
  struct LoopState {  // what a checkpoint records of the loop
    int epoch = 0;
    int evals_without_gain = 0;
    bool finished = false;
    const TrainResult* result = nullptr;
  };
  // Writes a checkpoint of the state after step_ (every worker calls it at
  // the same step). Returns an error only when the workers cannot agree
  // (fatal); a checkpoint that fails to write is logged, reported in the
  // metrics, counted, and training goes on with the previous checkpoints
  // intact (the final one's failure is kept for TrainResult).
  [[nodiscard]] Status Checkpoint(const LoopState& p, const std::string& reader_position);
  // Chief's part: shards, dense file, manifest, commit, retention.
  Status CommitCheckpointAsChief(const std::string& tmp, const std::string& final_dir,
                                 const LoopState& p, std::vector<ckpt::FileEntry> worker_files);
  Status RestoreFrom(const std::string& dir);
  // Early stopping (trainer_best.cc): every worker calls SaveBest after an
  // evaluation that is the best so far; a failure to write it is logged
  // and leaves no snapshot. RestoreBest puts the snapshot of step `step`
  // back (dense values and rows) if there is one.
  bool KeepsBest() const;
  Status SaveBest();
  StatusOr<bool> RestoreBest(int64_t step);
  // Worker 0's status on every worker (empty bytes = OK).
  Status AgreeWithChief(const Status& chief_status, const std::string& what);
  StatusOr<bool> CheckpointDue();
  std::vector<ps::TableSlice> Slices(SparseBatch* sparse, bool grads);
  // Reads the next batch into `slot`; with a worker group, true only if
  // every worker has one (so all take the same number of steps).
  StatusOr<bool> NextBatch(BatchSource* source, Slot* slot, TrainResult* res);
  Status StartPull(Slot* slot, int64_t step);
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
  TrainerHook* hook_ = nullptr;
  SparseBatchBuilder builder_;
  Slot slots_[2];  // training: current and prefetched
  Slot eval_;
  VectorF logits_, dlogits_;
  std::vector<ps::TableSlice> slices_;
  int64_t step_ = 0;
  // Checkpoints: the state to resume (set by Resume), the chain so far.
  std::unique_ptr<ckpt::WorkerState> resume_;
  std::string last_checkpoint_;      // name of the newest checkpoint of this run's chain
  int64_t last_checkpoint_step_ = 0;
  int chain_length_ = 0;
  double last_checkpoint_time_ = 0;  // seconds since the trainer started, at the last one
  int checkpoints_written_ = 0;
  int checkpoints_failed_ = 0;
  int64_t best_saved_step_ = -1;  // the step of the best model's snapshot, -1: none
  std::string final_checkpoint_error_;
  double checkpoint_seconds_ = 0;
  std::vector<double> checkpoint_pauses_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::string pass_progress_label_;
};

// Mean sigmoid cross-entropy of `logits` against `labels`, and dLoss/dlogit
// (already divided by the batch size) into `dlogits`.
double SigmoidCrossEntropy(const VectorF& logits, const std::vector<float>& labels,
                           VectorF* dlogits);

}  // namespace ctrps::worker
