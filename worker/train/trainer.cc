#include "worker/train/trainer.h"

#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>

#include "common/progress.h"
#include "worker/eval/auc.h"
#include "worker/nn/dense_optimizer.h"

namespace ctrps::worker {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

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
      client_(client), metrics_(metrics), builder_(RowWidths(*model)) {}

Trainer::~Trainer() = default;

Status Trainer::DeclareTables() {
  std::vector<ps::TableConfig> tables;
  const ModelOptions& mo = model_->options();
  for (int f = 0; f < mo.num_fields; ++f) {
    ps::TableConfig tc;
    tc.table_id = f;
    tc.dim = model_->RowWidth(f);
    tc.zero_prefix = tc.dim - mo.emb_dims[f];  // the linear weight starts at 0
    tc.init_scale = options_.embedding_init_scale;
    tc.init_seed = options_.embedding_seed;
    tc.optimizer = options_.sparse_optimizer;
    tables.push_back(tc);
  }
  return client_->DeclareTables(tables);
}

Status Trainer::PullRows(bool training) {
  slices_.clear();
  for (size_t f = 0; f < sparse_.fields.size(); ++f) {
    FieldRows& fr = sparse_.fields[f];
    slices_.push_back({static_cast<int>(f), fr.unique_keys.data(), fr.unique_keys.size(),
                       fr.rows.data()});
  }
  return client_->Pull(slices_, training);
}

Status Trainer::PushGrads() {
  slices_.clear();
  for (size_t f = 0; f < sparse_.fields.size(); ++f) {
    FieldRows& fr = sparse_.fields[f];
    slices_.push_back({static_cast<int>(f), fr.unique_keys.data(), fr.unique_keys.size(),
                       fr.grads.data()});
  }
  return client_->Push(slices_, static_cast<uint32_t>(step_));
}

StatusOr<EvalResult> Trainer::Evaluate(BatchSource* data, int64_t max_rows,
                                       std::vector<float>* scores, std::vector<float>* labels) {
  RETURN_IF_ERROR(data->Rewind());
  std::vector<float> own_scores, own_labels;
  if (!scores) scores = &own_scores;
  if (!labels) labels = &own_labels;
  const size_t first = scores->size();
  EvalResult r;
  double sum_p = 0, sum_y = 0;
  while (max_rows == 0 || r.rows < max_rows) {
    ASSIGN_OR_RETURN(bool more, data->Next(&batch_));
    if (!more) break;
    builder_.Build(batch_, &sparse_);
    RETURN_IF_ERROR(PullRows(/*training=*/false));
    model_->Forward(sparse_, /*training=*/false, &logits_);
    int n = batch_.size();
    if (max_rows > 0) n = static_cast<int>(std::min<int64_t>(n, max_rows - r.rows));
    for (int i = 0; i < n; ++i) {
      float p = 1.0f / (1.0f + std::exp(-logits_[i]));
      sum_p += p;
      sum_y += batch_.labels[i];
      scores->push_back(p);
      labels->push_back(batch_.labels[i]);
    }
    r.rows += n;
  }
  if (r.rows == 0) return Status::InvalidArgument("evaluation data has no valid rows");
  std::vector<float> s(scores->begin() + first, scores->end());
  std::vector<float> y(labels->begin() + first, labels->end());
  ASSIGN_OR_RETURN(r.auc, ComputeAuc(s, y));
  ASSIGN_OR_RETURN(r.logloss, ComputeLogloss(s, y));
  r.mean_prediction = sum_p / r.rows;
  r.mean_label = sum_y / r.rows;
  return r;
}

StatusOr<EvalResult> Trainer::EvaluateAndLog(BatchSource* valid, const std::string& split) {
  auto t0 = Clock::now();
  ASSIGN_OR_RETURN(EvalResult r, Evaluate(valid, options_.max_eval_rows));
  spdlog::info("eval {} step {}: AUC {:.5f}  logloss {:.5f}  rows {}  ({:.1f}s)", split, step_,
               r.auc, r.logloss, r.rows, Since(t0));
  if (metrics_)
    metrics_->Write(JsonLine()
                        .Add("event", "eval")
                        .Add("split", split)
                        .Add("step", step_)
                        .Add("rows", r.rows)
                        .Add("auc", r.auc)
                        .Add("logloss", r.logloss)
                        .Add("mean_prediction", r.mean_prediction)
                        .Add("mean_label", r.mean_label));
  return r;
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

  for (int epoch = 0; epoch < options_.epochs && !stop; ++epoch) {
    RETURN_IF_ERROR(train->Rewind());
    while (!stop) {
      auto t = Clock::now();
      ASSIGN_OR_RETURN(bool more, train->Next(&batch_));
      res.read_s += Since(t);
      if (!more) break;
      builder_.Build(batch_, &sparse_);
      t = Clock::now();
      RETURN_IF_ERROR_CTX(PullRows(/*training=*/true), "pull at step " + std::to_string(step_));
      res.pull_s += Since(t);

      t = Clock::now();
      model_->Forward(sparse_, /*training=*/true, &logits_);
      double loss = SigmoidCrossEntropy(logits_, batch_.labels, &dlogits_);
      if (!std::isfinite(loss))
        return Status::Internal("training loss is " + std::to_string(loss) + " at step " +
                                std::to_string(step_) + ": lower the learning rates");
      std::fill_n(model_->dense_grads(), model_->dense_size(), 0.0f);
      model_->Backward(dlogits_, &sparse_);
      dense_optimizer_->Step(model_->dense_values(), model_->dense_grads());
      res.compute_s += Since(t);

      ++step_;
      t = Clock::now();
      RETURN_IF_ERROR_CTX(PushGrads(), "push at step " + std::to_string(step_));
      res.push_s += Since(t);

      res.samples += batch_.size();
      window_loss += loss;
      ++window_steps;
      char extra[64];
      std::snprintf(extra, sizeof(extra), "epoch %d step %lld loss %.5f", epoch + 1,
                    static_cast<long long>(step_), window_loss / window_steps);
      double pass = train->PassFraction();
      if (pass >= 0) progress.SetFraction((epoch + pass) / options_.epochs);
      progress.Add(batch_.size(), extra);
      if (step_ % 100 == 0 && metrics_) {
        metrics_->Write(JsonLine()
                            .Add("event", "train")
                            .Add("step", step_)
                            .Add("epoch", epoch + 1)
                            .Add("samples", res.samples)
                            .Add("loss", window_loss / window_steps)
                            .Add("samples_per_s", res.samples / Since(start)));
        res.final_train_loss = window_loss / window_steps;
        window_loss = 0;
        window_steps = 0;
      }
      if (options_.max_steps > 0 && step_ >= options_.max_steps) stop = true;
      if (valid && options_.eval_every_steps > 0 && step_ % options_.eval_every_steps == 0)
        RETURN_IF_ERROR(evaluate());
    }
    if (window_steps > 0) res.final_train_loss = window_loss / window_steps;
    res.epochs_completed = epoch + 1;
    spdlog::info("epoch {} done: step {}, {} samples", epoch + 1, step_, res.samples);
    if (valid && !res.early_stopped) RETURN_IF_ERROR(evaluate());
  }
  progress.Finish();
  res.steps = step_;
  res.train_seconds = Since(start);
  res.samples_per_second = res.samples / std::max(res.train_seconds, 1e-9);
  std::string skipped = train->SkippedSummary();
  if (!skipped.empty()) spdlog::warn("training data: {}", skipped);
  else if (!train->ReadSummary().empty()) spdlog::info("training data: {}", train->ReadSummary());
  if (metrics_)
    metrics_->Write(JsonLine()
                        .Add("event", "train_done")
                        .Add("steps", res.steps)
                        .Add("samples", res.samples)
                        .Add("seconds", res.train_seconds)
                        .Add("samples_per_s", res.samples_per_second)
                        .Add("read_s", res.read_s)
                        .Add("pull_s", res.pull_s)
                        .Add("compute_s", res.compute_s)
                        .Add("push_s", res.push_s)
                        .Add("early_stopped", res.early_stopped));
  return res;
}

}  // namespace ctrps::worker
