// The trainer's evaluation: exact AUC and logloss over this worker's data
// or, distributed, over every worker's (gathered on worker 0), and the
// check that the dense replicas agree.
#include <chrono>
#include <cstring>
#include <optional>

#include <spdlog/spdlog.h>

#include "common/status_wire.h"
#include "common/hash.h"
#include "common/progress.h"
#include "worker/eval/auc.h"
#include "worker/train/clock.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
StatusOr<EvalResult> Trainer::Evaluate(BatchSource* data, int64_t max_rows,
                                       std::vector<float>* scores, std::vector<float>* labels) {
  const bool distributed = group_ && group_->size() > 1;
  // Asynchronous pushes (every worker's) are applied before anyone scores.
  RETURN_IF_ERROR(client_->Flush());
  if (distributed) {
    RETURN_IF_ERROR(group_->AllTrue(true, "the barrier before evaluation at step " +
                                              std::to_string(step_)).status());
    if (max_rows > 0) max_rows = (max_rows + group_->size() - 1) / group_->size();
  }
  RETURN_IF_ERROR(data->Rewind());
  std::vector<float> own_scores, own_labels;
  if (!scores) scores = &own_scores;
  if (!labels) labels = &own_labels;
  const size_t first = scores->size();
  EvalResult r;
  double sum_p = 0, sum_y = 0;
  Batch& batch = eval_.batch;
  std::optional<Progress> progress;
  if (!pass_progress_label_.empty())
    progress.emplace(pass_progress_label_, max_rows > 0 ? max_rows : -1, "rows",
                     options_.log_interval_s);
  while (max_rows == 0 || r.rows < max_rows) {
    ASSIGN_OR_RETURN(bool more, data->Next(&batch));
    if (!more) {
      if (progress) progress->SetFraction(1.0);  // the whole pass, whatever the estimate said
      break;
    }
    builder_.Build(batch, &eval_.sparse);
    RETURN_IF_ERROR(client_->Pull(Slices(&eval_.sparse, false), /*training=*/false));
    model_->Forward(eval_.sparse, /*training=*/false, &logits_);
    int n = batch.size();
    if (max_rows > 0) n = static_cast<int>(std::min<int64_t>(n, max_rows - r.rows));
    for (int i = 0; i < n; ++i) {
      float p = 1.0f / (1.0f + std::exp(-logits_[i]));
      sum_p += p;
      sum_y += batch.labels[i];
      scores->push_back(p);
      labels->push_back(batch.labels[i]);
    }
    r.rows += n;
    if (progress) {
      progress->SetFraction(data->PassFraction());
      progress->Add(n);
    }
  }
  if (progress) progress->Finish();
  std::vector<float> s(scores->begin() + first, scores->end());
  std::vector<float> y(labels->begin() + first, labels->end());
  if (distributed) return GlobalMetrics(s, y);
  if (r.rows == 0) return Status::InvalidArgument("evaluation data has no valid rows");
  ASSIGN_OR_RETURN(r.auc, ComputeAuc(s, y));
  ASSIGN_OR_RETURN(r.logloss, ComputeLogloss(s, y));
  r.mean_prediction = sum_p / r.rows;
  r.mean_label = sum_y / r.rows;
  return r;
}

Status Trainer::ObservePass(BatchSource* data, int64_t max_rows, const BatchObserver& fn) {
  RETURN_IF_ERROR(client_->Flush());
  RETURN_IF_ERROR(data->Rewind());
  int64_t rows = 0;
  Batch& batch = eval_.batch;
  std::optional<Progress> progress;
  if (!pass_progress_label_.empty())
    progress.emplace(pass_progress_label_, max_rows > 0 ? max_rows : -1, "rows",
                     options_.log_interval_s);
  while (max_rows == 0 || rows < max_rows) {
    ASSIGN_OR_RETURN(bool more, data->Next(&batch));
    if (!more) {
      if (progress) progress->SetFraction(1.0);
      break;
    }
    builder_.Build(batch, &eval_.sparse);
    RETURN_IF_ERROR(client_->Pull(Slices(&eval_.sparse, false), /*training=*/false));
    model_->Forward(eval_.sparse, /*training=*/false, &logits_);
    int n = batch.size();
    if (max_rows > 0) n = static_cast<int>(std::min<int64_t>(n, max_rows - rows));
    RETURN_IF_ERROR(fn(eval_.sparse, n));
    rows += n;
    if (progress) {
      progress->SetFraction(data->PassFraction());
      progress->Add(n);
    }
  }
  if (progress) progress->Finish();
  return Status::OK();
}

StatusOr<EvalResult> Trainer::GlobalMetrics(const std::vector<float>& scores,
                                            const std::vector<float>& labels) {
  const std::string what = "the evaluation gather at step " + std::to_string(step_);
  std::vector<char> mine((scores.size() + labels.size()) * sizeof(float));
  std::memcpy(mine.data(), scores.data(), scores.size() * sizeof(float));
  std::memcpy(mine.data() + scores.size() * sizeof(float), labels.data(),
              labels.size() * sizeof(float));
  ASSIGN_OR_RETURN(auto all, group_->Gather(std::move(mine), what));
  // Reply: one status byte, then an EvalResult or an error message.
  std::vector<char> reply;
  if (group_->index() == 0) {
    auto compute = [&]() -> StatusOr<EvalResult> {
      std::vector<float> s, y;
      for (size_t w = 0; w < all.size(); ++w) {
        if (all[w].size() % (2 * sizeof(float)) != 0)
          return Status::Corruption("worker " + std::to_string(w) + " sent " +
                                    std::to_string(all[w].size()) + " bytes of predictions");
        const size_t n = all[w].size() / (2 * sizeof(float));
        const float* f = reinterpret_cast<const float*>(all[w].data());
        s.insert(s.end(), f, f + n);
        y.insert(y.end(), f + n, f + 2 * n);
      }
      EvalResult r;
      r.rows = static_cast<int64_t>(s.size());
      if (r.rows == 0) return Status::InvalidArgument("evaluation data has no valid rows on any worker");
      ASSIGN_OR_RETURN(r.auc, ComputeAuc(s, y));
      ASSIGN_OR_RETURN(r.logloss, ComputeLogloss(s, y));
      double sp = 0, sy = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        sp += s[i];
        sy += y[i];
      }
      r.mean_prediction = sp / r.rows;
      r.mean_label = sy / r.rows;
      return r;
    };
    auto r = compute();
    if (r.ok()) {
      reply.resize(1 + sizeof(EvalResult));
      reply[0] = 1;
      std::memcpy(reply.data() + 1, &*r, sizeof(EvalResult));
    } else {
      const std::string text = EncodeStatus(r.status());
      reply.assign(1, 0);
      reply.insert(reply.end(), text.begin(), text.end());
    }
  }
  RETURN_IF_ERROR(group_->Broadcast(&reply, what));
  if (reply.empty()) return Status::Corruption(what + ": empty reply from worker 0");
  if (reply[0] != 1) return DecodeStatus(std::string(reply.begin() + 1, reply.end()));
  if (reply.size() != 1 + sizeof(EvalResult))
    return Status::Corruption(what + ": malformed reply from worker 0");
  EvalResult r;
  std::memcpy(&r, reply.data() + 1, sizeof(r));
  return r;
}

Status Trainer::CheckDenseReplicas(const std::string& when) {
  if (!group_ || group_->size() < 2) return Status::OK();
  const std::string what = "the dense checksum check " + when;
  const uint64_t mine = HashBytes(reinterpret_cast<const char*>(model_->dense_values()),
                                  model_->dense_size() * sizeof(float));
  std::vector<char> bytes(sizeof(mine));
  std::memcpy(bytes.data(), &mine, sizeof(mine));
  ASSIGN_OR_RETURN(auto all, group_->Gather(std::move(bytes), what));
  std::vector<char> verdict;  // empty: all agree; else the error text
  if (group_->index() == 0) {
    std::string bad;
    for (size_t w = 1; w < all.size(); ++w) {
      uint64_t h = 0;
      if (all[w].size() == sizeof(h)) std::memcpy(&h, all[w].data(), sizeof(h));
      if (all[w].size() != sizeof(h) || h != mine) bad += " " + std::to_string(w);
    }
    if (!bad.empty()) {
      const std::string text = "dense parameter replicas differ " + when +
                               ": workers" + bad + " disagree with worker 0";
      verdict.assign(text.begin(), text.end());
    }
  }
  RETURN_IF_ERROR(group_->Broadcast(&verdict, what));
  if (!verdict.empty()) return Status::Internal(std::string(verdict.begin(), verdict.end()));
  return Status::OK();
}

StatusOr<EvalResult> Trainer::EvaluateAndLog(BatchSource* valid, const std::string& split) {
  auto t0 = Clock::now();
  RETURN_IF_ERROR(CheckDenseReplicas("at step " + std::to_string(step_)));
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
                        .Add("mean_label", r.mean_label)
                        .Add("seconds", Since(started_)));
  return r;
}

}  // namespace ctrps::worker
