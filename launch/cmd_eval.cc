// ctrps eval --model DIR|BUNDLE [--data FILE] [--truth FILE] [--out FILE]
#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/progress.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "launch/saved_model.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/eval/auc.h"
#include "worker/nn/threading.h"
#include "worker/serve/bundle.h"
#include "worker/serve/engine.h"
#include "worker/synth/truth.h"
#include "worker/train/model_io.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kEvalFlags = {
    {"model", "DIR", "a model saved by `ctrps train`, a checkpoint, or a bundle from `ctrps export` (its "
                     "config.pbtxt says how to read data)"},
    {"data", "FILE", "data to score (file, list or glob); default: the config's data.test"},
    {"truth", "FILE", "true click probabilities of --data (from gen-data): report the "
                      "Bayes-optimal AUC and logloss beside the model's"},
    {"out", "FILE", "write one predicted probability per scored row to FILE"},
    {"set", "FIELD=VALUE", "override a field of the model's config (e.g. data.format)", true},
};

// Reads "key value" lines of train_summary.txt; empty if absent.
std::string TrainSpeed(const std::string& model_dir) {
  std::ifstream in(model_dir + "/train_summary.txt");
  std::string k, v;
  while (in >> k >> v)
    if (k == "samples_per_s") return v;
  return "";
}

// Scores `data` with a serving bundle (worker/serve), as Trainer::Evaluate
// does with a saved model. Keys absent from the bundle read as zero rows.
StatusOr<worker::EvalResult> EvaluateBundle(worker::serve::InferenceEngine* engine,
                                            worker::BatchSource* data, std::vector<float>* scores,
                                            std::vector<float>* labels) {
  RETURN_IF_ERROR(data->Rewind());
  worker::EvalResult r;
  double sum_p = 0, sum_y = 0;
  worker::Batch batch;
  std::vector<float> probs;
  Progress progress("eval", -1, "rows");
  while (true) {
    ASSIGN_OR_RETURN(bool more, data->Next(&batch));
    if (!more) {
      progress.SetFraction(1.0);
      break;
    }
    probs.resize(batch.size());
    engine->PredictBatch(batch, probs.data());
    for (int i = 0; i < batch.size(); ++i) {
      sum_p += probs[i];
      sum_y += batch.labels[i];
    }
    scores->insert(scores->end(), probs.begin(), probs.end());
    labels->insert(labels->end(), batch.labels.begin(), batch.labels.end());
    r.rows += batch.size();
    progress.SetFraction(data->PassFraction());
    progress.Add(batch.size());
  }
  progress.Finish();
  if (r.rows == 0) return Status::InvalidArgument("evaluation data has no valid rows");
  ASSIGN_OR_RETURN(r.auc, worker::ComputeAuc(*scores, *labels));
  ASSIGN_OR_RETURN(r.logloss, worker::ComputeLogloss(*scores, *labels));
  r.mean_prediction = sum_p / r.rows;
  r.mean_label = sum_y / r.rows;
  return r;
}

Status Eval(const LoadedConfig& c, const Flags& flags) {
  const std::string model_dir = flags.Get("model");
  worker::SetNumThreads(c.job.train().threads());
  const std::string data = flags.Get("data", c.job.data().test());
  if (data.empty()) return Status::InvalidArgument("no --data given and the config has no data.test");
  ASSIGN_OR_RETURN(auto stream, OpenBatchSource(c, data, /*training=*/false));
  std::vector<float> scores, labels;
  worker::EvalResult r;
  worker::ModelOptions mo;
  if (worker::serve::IsBundleDir(model_dir)) {
    ASSIGN_OR_RETURN(auto engine, worker::serve::InferenceEngine::Open(model_dir));
    mo = engine->manifest().model;
    ASSIGN_OR_RETURN(r, EvaluateBundle(engine.get(), stream.get(), &scores, &labels));
  } else {
    // A model saved by `ctrps train`, or a checkpoint.
    ASSIGN_OR_RETURN(SavedModel saved, LoadExportSource(c, model_dir));
    mo = saved.model->options();
    ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c));
    to.checkpoint = {};
    worker::Trainer trainer(to, saved.model.get(), nullptr, saved.client.get(), nullptr);
    trainer.ShowPassProgress("eval");
    ASSIGN_OR_RETURN(r, trainer.Evaluate(stream.get(), 0, &scores, &labels));
  }
  std::string skipped = stream->SkippedSummary();
  if (!skipped.empty())
    spdlog::warn("{}: {}{}", data, skipped,
                 flags.Has("out") ? "; --out has no line for them, so its lines do not line up "
                                    "with the input lines (`ctrps predict` stops at such a line)"
                                  : "");

  if (flags.Has("out")) {
    std::ofstream out(flags.Get("out"));
    for (float p : scores) out << p << "\n";
    if (!out) return Status::IOError("cannot write " + flags.Get("out"));
  }
  std::printf("\nctrps eval: %s on %s\n", worker::ModelTypeName(mo.type), data.c_str());
  std::printf("  %-22s %s\n", "rows", std::to_string(r.rows).c_str());
  std::printf("  %-22s %.5f\n", "model AUC", r.auc);
  std::printf("  %-22s %.5f\n", "model logloss", r.logloss);
  std::printf("  %-22s %.4f (observed CTR %.4f)\n", "mean prediction", r.mean_prediction,
              r.mean_label);
  if (flags.Has("truth")) {
    if (!skipped.empty())
      return Status::FailedPrecondition("rows of " + data +
                                        " were skipped as malformed, so --truth no longer lines up");
    ASSIGN_OR_RETURN(std::vector<float> truth, worker::synth::ReadTruthFile(flags.Get("truth")));
    if (truth.size() != labels.size())
      return Status::InvalidArgument(flags.Get("truth") + " has " + std::to_string(truth.size()) +
                                     " probabilities but " + data + " has " +
                                     std::to_string(labels.size()) + " rows");
    ASSIGN_OR_RETURN(double bayes_auc, worker::ComputeAuc(truth, labels));
    ASSIGN_OR_RETURN(double bayes_logloss, worker::ComputeLogloss(truth, labels));
    std::printf("  %-22s %.5f\n", "Bayes-optimal AUC", bayes_auc);
    std::printf("  %-22s %.5f\n", "Bayes-optimal logloss", bayes_logloss);
    std::printf("  %-22s %.5f\n", "AUC gap to Bayes", bayes_auc - r.auc);
  }
  std::string speed = TrainSpeed(model_dir);
  if (!speed.empty()) std::printf("  %-22s %s\n", "train samples/s", speed.c_str());
  return Status::OK();
}

}  // namespace

int RunEval(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kEvalFlags);
  if (!flags.ok() || flags->help() || !flags->Has("model")) {
    if (!flags.ok()) std::fprintf(stderr, "ctrps eval: %s\n\n", flags.status().message().c_str());
    else if (!flags->help()) std::fprintf(stderr, "ctrps eval: --model is required\n\n");
    std::fputs(FlagsUsage("eval", "Scores data with a trained model: AUC, logloss, and with "
                                  "--truth the Bayes-optimal figures.", kEvalFlags).c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  auto config = LoadConfig(flags->Get("model") + "/config.pbtxt", flags->GetAll("set"));
  if (!config.ok()) {
    std::fprintf(stderr, "ctrps eval: %s\n", config.status().message().c_str());
    return 2;
  }
  Status s = ValidateConfig(*config, "eval");
  if (!s.ok()) {
    std::fprintf(stderr, "ctrps eval: bad config: %s\n", s.message().c_str());
    return 2;
  }
  InitLogging(config->job.output().log_level());
  s = Eval(*config, *flags);
  if (!s.ok()) {
    spdlog::error("eval failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
