#include "worker/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/progress.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/clock.h"

namespace ctrps::worker {
namespace {

std::vector<int> RowWidths(const Model& m) {
  std::vector<int> w(m.options().num_fields);
  for (int f = 0; f < m.options().num_fields; ++f) w[f] = m.RowWidth(f);
  return w;
}

}  // namespace

Status TrainerOptions::Validate() const {
  if (epochs < 1) return Status::InvalidArgument("epochs must be >= 1");
  if (eval_every_steps < 0 || max_steps < 0 || max_eval_rows < 0)
    return Status::InvalidArgument("eval_every_steps, max_steps and max_eval_rows must be >= 0");
  if (early_stopping_patience < 0) return Status::InvalidArgument("patience must be >= 0");
  RETURN_IF_ERROR(checkpoint.Validate());
  return sparse_optimizer.Validate();
}

double SigmoidCrossEntropy(const VectorF& logits, const std::vector<float>& labels,
                           VectorF* dlogits) {
  const int B = static_cast<int>(logits.size());
  dlogits->resize(B);
  double loss = 0;
  const float inv_b = 1.0f / B;
  for (int i = 0; i < B; ++i) {
    const float z = logits[i], y = labels[i];
    // log(1 + exp(-|z|)) + max(z, 0) - y z: stable for large |z|.
    loss += std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0f) - y * z;
    const float p = 1.0f / (1.0f + std::exp(-z));
    (*dlogits)[i] = (p - y) * inv_b;
  }
  return loss / B;
}

Trainer::Trainer(TrainerOptions options, Model* model, DenseOptimizer* dense_optimizer,
                 ps::EmbeddingClient* client, MetricsWriter* metrics)
    : options_(std::move(options)), model_(model), dense_optimizer_(dense_optimizer),
      client_(client), metrics_(metrics), builder_(RowWidths(*model)) {
  // Unique keys shard by shard: servers then need no regrouping (server.cc).
  if (client_) builder_.SetShardOrder(client_->NumVirtualShards());
}

Trainer::~Trainer() = default;

Status Trainer::DeclareTables() { return client_->DeclareTables(TableConfigs()); }

std::vector<ps::TableConfig> Trainer::TableConfigs() const {
  std::vector<ps::TableConfig> tables;
  const ModelOptions& mo = model_->options();
  for (int f = 0; f < mo.num_fields; ++f) {
    ps::TableConfig tc;
    tc.table_id = mo.TableOf(f);
    tc.dim = model_->RowWidth(f);
    tc.zero_prefix = tc.dim - mo.emb_dims[f];  // the linear weight starts at 0
    tc.init_scale = options_.embedding_init_scale;
    tc.init_seed = options_.embedding_seed;
    tc.optimizer = options_.sparse_optimizer;
    tables.push_back(tc);
  }
  return tables;
}

std::vector<ps::TableSlice> Trainer::Slices(SparseBatch* sparse, bool grads) {
  std::vector<ps::TableSlice> slices;
  slices.reserve(sparse->fields.size());
  for (size_t f = 0; f < sparse->fields.size(); ++f) {
    FieldRows& fr = sparse->fields[f];
    slices.push_back({model_->options().TableOf(static_cast<int>(f)), fr.unique_keys.data(), fr.unique_keys.size(),
                      grads ? fr.grads.data() : fr.rows.data()});
  }
  return slices;
}

// The dense gradients averaged over every row of the step: each worker's
// batch-mean gradient weighted by its rows (one allreduce of the gradients
// times the rows, with the rows appended), so a short or empty last batch
// counts for what it holds.
Status Trainer::ReduceDenseGrads(int batch_rows) {
  const size_t n = model_->dense_size();
  float* g = model_->dense_grads();
  reduce_buf_.resize(n + 1);
  const float w = static_cast<float>(batch_rows);
  for (size_t i = 0; i < n; ++i) reduce_buf_[i] = g[i] * w;
  reduce_buf_[n] = w;
  RETURN_IF_ERROR(group_->AllreduceMean(reduce_buf_.data(), n + 1,
                                        "the dense gradient allreduce at step " +
                                            std::to_string(step_ + 1)));
  const float rows = reduce_buf_[n];
  const float inv = rows > 0 ? 1.0f / rows : 0.0f;
  for (size_t i = 0; i < n; ++i) g[i] = reduce_buf_[i] * inv;
  return Status::OK();
}

// Starts the pull of a slot's rows; an empty batch (a worker joining the
// step without rows) pulls nothing.
Status Trainer::StartPull(Slot* slot, int64_t step) {
  if (slot->batch.size() == 0) return Status::OK();
  RETURN_IF_ERROR_CTX(client_->StartPull(Slices(&slot->sparse, false), true),
                      "pull at step " + std::to_string(step));
  return Status::OK();
}

StatusOr<bool> Trainer::NextBatch(BatchSource* source, Slot* slot, TrainResult* res) {
  auto t = Clock::now();
  if (options_.checkpoint.enabled() && options_.overlap_pull) {
    // A checkpoint taken while this batch is prefetched resumes before it.
    ASSIGN_OR_RETURN(slot->position_before, source->SavePosition());
  }
  ASSIGN_OR_RETURN(bool more, source->Next(&slot->batch));
  if (!more) {  // an empty batch: a step this worker joins without rows
    slot->batch.num_fields = builder_.num_fields();
    slot->batch.Clear();
  }
  builder_.Build(slot->batch, &slot->sparse);
  res->read_s += Since(t);
  if (group_ && group_->size() > 1) {
    // Every worker takes part in every step (BSP needs each one's push, and
    // the dense allreduce everyone): the epoch goes on while any worker has
    // rows, and a worker whose partition ran out joins with empty batches,
    // so uneven partitions (whole .gz files) are trained to their end.
    t = Clock::now();
    const bool mine = more;
    ASSIGN_OR_RETURN(more, group_->AnyTrue(mine, "the end-of-data check after step " +
                                                     std::to_string(step_)));
    res->wait_s += Since(t);
    if (more && !mine && !joined_empty_) {
      spdlog::warn("worker {} of {}: its partition ran out at step {}; it joins the rest of the "
                   "epoch with empty batches while other workers train theirs",
                   group_->index(), group_->size(), step_);
    }
    joined_empty_ = more && !mine;
  }
  return more;
}

StatusOr<TrainResult> Trainer::Train(BatchSource* train, BatchSource* valid) {
  RETURN_IF_ERROR(options_.Validate());
  TrainResult res;
  res.has_valid = valid != nullptr;
  res.best_valid.auc = -1;
  int evals_without_gain = 0;
  auto start = Clock::now();
  Progress progress("train", -1, "samples", options_.log_interval_s);
  double window_loss = 0;
  int64_t window_steps = 0;
  bool stop = false;

  auto evaluate = [&]() -> Status {
    ASSIGN_OR_RETURN(EvalResult r, EvaluateAndLog(valid, "valid"));
    res.last_valid = r;
    if (r.auc > res.best_valid.auc) {
      res.best_valid_step = step_;
      if (KeepsBest()) RETURN_IF_ERROR(SaveBest());
    }
    if (r.auc > res.best_valid.auc + options_.early_stopping_min_delta) {
      res.best_valid = r;
      evals_without_gain = 0;
    } else {
      if (r.auc > res.best_valid.auc) res.best_valid = r;
      ++evals_without_gain;
      if (options_.early_stopping_patience > 0 &&
          evals_without_gain >= options_.early_stopping_patience) {
        spdlog::info("early stopping: no validation AUC gain of {} in {} evaluations",
                     options_.early_stopping_min_delta, evals_without_gain);
        res.early_stopped = true;
        stop = true;
      }
    }
    return Status::OK();
  };

  // Resuming: the loop continues where the checkpoint was taken.
  int first_epoch = 0;
  int64_t resumed_samples = 0;
  const bool resuming = resume_ != nullptr;
  bool resumed_finished = false;
  if (resuming) {
    first_epoch = resume_->epoch();
    res.samples = resumed_samples = resume_->samples();
    evals_without_gain = resume_->evals_without_gain();
    if (resume_->has_best_valid()) {
      res.best_valid_step = resume_->has_best_valid_step() ? resume_->best_valid_step() : -1;
      if (res.best_valid_step >= 0) best_saved_step_ = res.best_valid_step;
      res.best_valid.auc = resume_->best_valid_auc();
      res.best_valid.logloss = resume_->best_valid_logloss();
      res.best_valid.rows = resume_->best_valid_rows();
    }
    // Training that stopped early stays stopped; otherwise the loop goes
    // on (a run that ended by max_steps or epochs continues if the config
    // now allows more).
    res.early_stopped = resume_->early_stopped();
    resumed_finished = res.early_stopped;
    if (hook_ && resume_->has_hook_state())
      RETURN_IF_ERROR_CTX(hook_->RestoreState(resume_->hook_state()),
                          "restoring the compression state of the checkpoint");
    if (resumed_finished) {
      spdlog::info("the checkpoint is of training that stopped early: nothing left to train");
      stop = true;
    }
  }
  if (options_.max_steps > 0 && step_ >= options_.max_steps) stop = true;
  if (options_.evaluate_at_start && valid && !resuming && !stop) RETURN_IF_ERROR(evaluate());
  const bool checkpoints = options_.checkpoint.enabled();
  int epoch_now = first_epoch;
  auto checkpoint = [&](int epoch, const std::string& position, bool finished) -> Status {
    LoopState ls;
    ls.epoch = epoch;
    ls.evals_without_gain = evals_without_gain;
    ls.finished = finished;
    ls.result = &res;
    return Checkpoint(ls, position);
  };

  for (int epoch = first_epoch; epoch < options_.epochs && !stop; ++epoch) {
    epoch_now = epoch;
    if (resuming && epoch == first_epoch) {
      // Re-finding the position can take minutes (inside a gzip input it
      // decompresses from the file's start), while the other ranks wait.
      std::unique_ptr<ps::KeepAlive> alive;
      if (group_) alive = group_->StayAlive();
      RETURN_IF_ERROR_CTX(train->RestorePosition(resume_->reader_position()),
                          "restoring the reader position");
    } else {
      RETURN_IF_ERROR(train->Rewind());
    }
    int cur = 0;
    bool prefetched = false;  // slots_[cur] holds a batch whose pull has started
    while (!stop) {
      if (!prefetched) {
        ASSIGN_OR_RETURN(bool more, NextBatch(train, &slots_[cur], &res));
        if (!more) break;
        auto t = Clock::now();
        RETURN_IF_ERROR(StartPull(&slots_[cur], step_));
        res.pull_s += Since(t);
      }
      auto t = Clock::now();
      RETURN_IF_ERROR_CTX(client_->FinishPull(), "pull at step " + std::to_string(step_));
      (prefetched ? res.wait_s : res.pull_s) += Since(t);
      Slot& slot = slots_[cur];
      prefetched = false;
      bool last_of_epoch = false;

      const int batch_rows = slot.batch.size();
      t = Clock::now();
      double loss = 0;
      std::fill_n(model_->dense_grads(), model_->dense_size(), 0.0f);
      if (batch_rows > 0) {
        model_->Forward(slot.sparse, /*training=*/true, &logits_);
        loss = SigmoidCrossEntropy(logits_, slot.batch.labels, &dlogits_);
        if (!std::isfinite(loss))
          return Status::Internal("training loss is " + std::to_string(loss) + " at step " +
                                  std::to_string(step_) + ": lower the learning rates");
        model_->Backward(dlogits_, &slot.sparse);
        if (hook_) hook_->BeforePush(&slot.sparse);
      }
      res.compute_s += Since(t);

      // Sparse gradients go out first, so servers apply them while the dense
      // gradients are reduced and applied here. An empty batch pushes no
      // slices (the step's push still counts for BSP).
      t = Clock::now();
      RETURN_IF_ERROR_CTX(
          client_->Push(batch_rows > 0 ? Slices(&slot.sparse, true) : std::vector<ps::TableSlice>{},
                        static_cast<uint32_t>(step_ + 1)),
          "push at step " + std::to_string(step_ + 1));
      res.push_s += Since(t);
      if (options_.overlap_pull) {
        // The next batch's rows are looked up (after this step's push, so
        // they miss at most the other workers' in-flight pushes) while the
        // dense part of this step and the next read run here.
        ASSIGN_OR_RETURN(bool more, NextBatch(train, &slots_[cur ^ 1], &res));
        if (more) {
          t = Clock::now();
          RETURN_IF_ERROR(StartPull(&slots_[cur ^ 1], step_ + 2));
          res.pull_s += Since(t);
          prefetched = true;
        } else {
          last_of_epoch = true;
        }
      }
      if (group_ && group_->size() > 1) {
        t = Clock::now();
        RETURN_IF_ERROR(ReduceDenseGrads(batch_rows));
        res.allreduce_s += Since(t);
      }
      t = Clock::now();
      dense_optimizer_->Step(model_->dense_values(), model_->dense_grads());
      res.compute_s += Since(t);
      ++step_;
      if (hook_) RETURN_IF_ERROR_CTX(hook_->AfterStep(step_), "after step " + std::to_string(step_));
      if (prefetched) cur ^= 1;

      res.samples += batch_rows;
      if (batch_rows > 0) {
        window_loss += loss;
        ++window_steps;
      }
      // A worker joining with empty batches may have no loss in the window.
      const bool has_loss = window_steps > 0;
      const double window_mean = has_loss ? window_loss / window_steps : 0.0;
      char extra[64];
      if (has_loss)
        std::snprintf(extra, sizeof(extra), "epoch %d step %lld loss %.5f", epoch + 1,
                      static_cast<long long>(step_), window_mean);
      else
        std::snprintf(extra, sizeof(extra), "epoch %d step %lld (no rows)", epoch + 1,
                      static_cast<long long>(step_));
      double pass = train->PassFraction();
      if (pass >= 0) progress.SetFraction((epoch + pass) / options_.epochs);
      progress.Add(batch_rows, extra);
      if (step_ % 100 == 0 && metrics_) {
        JsonLine line;
        line.Add("event", "train").Add("step", step_).Add("epoch", epoch + 1).Add("samples", res.samples);
        if (has_loss) line.Add("loss", window_mean);
        metrics_->Write(line.Add("samples_per_s", res.samples / Since(start))
                            .Add("seconds", Since(started_)));
        if (has_loss) res.final_train_loss = window_mean;
        window_loss = 0;
        window_steps = 0;
      }
      if (options_.max_steps > 0 && step_ >= options_.max_steps) stop = true;
      if (valid && options_.eval_every_steps > 0 && step_ % options_.eval_every_steps == 0)
        RETURN_IF_ERROR(evaluate());
      if (checkpoints) {
        ASSIGN_OR_RETURN(bool due, CheckpointDue());
        if (due) {
          std::string position;
          if (prefetched) {
            position = slots_[cur].position_before;
          } else {
            ASSIGN_OR_RETURN(position, train->SavePosition());
          }
          RETURN_IF_ERROR(checkpoint(epoch, position, false));
        }
      }
      if (last_of_epoch) break;
    }
    // A prefetched pull left by a stop is finished before anything else.
    RETURN_IF_ERROR(client_->FinishPull());
    if (window_steps > 0) res.final_train_loss = window_loss / window_steps;
    res.epochs_completed = epoch + 1;
    spdlog::info("epoch {} done: step {}, {} samples", epoch + 1, step_, res.samples);
    if (hook_ && step_ > 0)
      RETURN_IF_ERROR_CTX(hook_->AfterEpoch(step_), "at the end of epoch " + std::to_string(epoch + 1));
    if (valid && !res.early_stopped) RETURN_IF_ERROR(evaluate());
  }
  if (resumed_finished && valid) res.has_valid = false;  // nothing was evaluated
  progress.Finish();
  RETURN_IF_ERROR_CTX(client_->Flush(), "the final push");
  RETURN_IF_ERROR(CheckDenseReplicas("at the end of training"));
  res.steps = step_;
  res.train_seconds = Since(start);
  res.samples_per_second = (res.samples - resumed_samples) / std::max(res.train_seconds, 1e-9);
  // (Unless the last periodic checkpoint, or the one resumed from, is of this step.)
  if (checkpoints && options_.checkpoint.at_end && !resumed_finished &&
      (last_checkpoint_.empty() || last_checkpoint_step_ != step_)) {
    ASSIGN_OR_RETURN(std::string position, train->SavePosition());
    RETURN_IF_ERROR(checkpoint(epoch_now, position, true));
  }
  // Early stopping: the test evaluation and the saved model are the best
  // evaluated model's, not the last one's (after the final checkpoint,
  // which records where training stopped; a resume of it restores the
  // best again).
  if (KeepsBest() && valid && res.best_valid_step >= 0) {
    if (res.best_valid_step == step_) {
      res.restored_best = true;  // the model is the best one
    } else if (best_saved_step_ == res.best_valid_step) {
      ASSIGN_OR_RETURN(res.restored_best, RestoreBest(res.best_valid_step));
      if (res.restored_best)
        spdlog::info("restored the best model (step {}, valid AUC {:.5f}) over the last (step {})",
                     res.best_valid_step, res.best_valid.auc, step_);
    } else {
      spdlog::warn("the best model (step {}) was not kept; the last model (step {}) is used",
                   res.best_valid_step, step_);
    }
    if (!options_.checkpoint.enabled() && (!group_ || group_->index() == 0)) {
      std::error_code ec;  // a snapshot for this run only
      std::filesystem::remove_all(options_.BestModelDir(), ec);
    }
  }
  res.checkpoints_written = checkpoints_written_;
  res.checkpoints_failed = checkpoints_failed_;
  res.final_checkpoint_error = final_checkpoint_error_;
  resume_.reset();
  // The counts add up every pass this run read (an 8,144-line file over
  // 10 epochs reads 81,440 lines): say so.
  const int passes = res.epochs_completed - first_epoch;
  const std::string over = "training data, " + std::to_string(passes) +
                           (passes == 1 ? " epoch" : " epochs, counted in each") + ": ";
  std::string skipped = train->SkippedSummary();
  if (!skipped.empty()) spdlog::warn("{}{}", over, skipped);
  else if (!train->ReadSummary().empty()) spdlog::info("{}{}", over, train->ReadSummary());
  if (metrics_) {
    JsonLine line;
    line.Add("event", "train_done")
        .Add("steps", res.steps)
        .Add("samples", res.samples)
        .Add("seconds", res.train_seconds)
        .Add("samples_per_s", res.samples_per_second)
        .Add("read_s", res.read_s)
        .Add("pull_s", res.pull_s)
        .Add("compute_s", res.compute_s)
        .Add("allreduce_s", res.allreduce_s)
        .Add("push_s", res.push_s)
        .Add("wait_s", res.wait_s)
        .Add("early_stopped", res.early_stopped);
    if (checkpoints)
      line.Add("checkpoints_written", res.checkpoints_written)
          .Add("checkpoints_failed", res.checkpoints_failed)
          .Add("final_checkpoint_failed", !res.final_checkpoint_error.empty());
    // This worker's input counts (all passes): lines, rows, and skipped
    // lines by reason ("skipped_wrong_column_count": 3).
    for (const auto& [name, count] : train->ReadCounters()) line.Add(name, static_cast<long long>(count));
    metrics_->Write(line);
  }
  return res;
}

}  // namespace ctrps::worker
