// ctrps train --config FILE [--set field.path=value ...]
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/metrics_writer.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/nn/threading.h"
#include "worker/train/model_io.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kTrainFlags = {
    {"config", "FILE", "job config in protobuf text format (see configs/, launch/config.proto)"},
    {"set", "FIELD=VALUE", "override a config field, e.g. --set train.batch_size=4096", true},
};

std::string FormatSummary(const worker::TrainResult& r, const worker::EvalResult* test,
                          const std::string& model_dir, const std::string& metrics_path) {
  char buf[2048];
  int n = std::snprintf(
      buf, sizeof(buf),
      "\n  steps            %lld\n  samples          %lld\n  train time       %.1f s\n"
      "  samples/s        %.0f\n  time split       read %.1fs  pull %.1fs  compute %.1fs  push %.1fs\n"
      "  final train loss %.5f\n",
      static_cast<long long>(r.steps), static_cast<long long>(r.samples), r.train_seconds,
      r.samples_per_second, r.read_s, r.pull_s, r.compute_s, r.push_s, r.final_train_loss);
  std::string out(buf, n);
  if (r.has_valid) {
    n = std::snprintf(buf, sizeof(buf), "  valid AUC        %.5f (best %.5f)\n  valid logloss    %.5f\n",
                      r.last_valid.auc, r.best_valid.auc, r.last_valid.logloss);
    out.append(buf, n);
  }
  if (test) {
    n = std::snprintf(buf, sizeof(buf), "  test AUC         %.5f\n  test logloss     %.5f\n",
                      test->auc, test->logloss);
    out.append(buf, n);
  }
  if (!model_dir.empty()) out += "  model            " + model_dir + "\n";
  out += "  metrics          " + metrics_path + "\n";
  return out;
}

Status Train(const LoadedConfig& c) {
  const config::JobConfig& job = c.job;
  worker::SetNumThreads(job.train().threads());
  std::error_code ec;
  std::filesystem::create_directories(job.output().dir(), ec);
  if (ec) return Status::IOError("cannot create output dir " + job.output().dir() + ": " + ec.message());
  const std::string config_text = ConfigToText(job);
  {
    std::ofstream(job.output().dir() + "/config.pbtxt") << config_text;
  }
  MetricsWriter metrics;
  RETURN_IF_ERROR(metrics.Open(job.output().dir() + "/metrics.jsonl", /*truncate=*/true));

  ASSIGN_OR_RETURN(worker::DatasetSchema schema, SchemaFor(c));
  ASSIGN_OR_RETURN(worker::ModelOptions mo, MakeModelOptions(c, schema));
  ASSIGN_OR_RETURN(auto model, worker::NewModel(mo));
  ASSIGN_OR_RETURN(auto dense_opt, MakeDenseOptimizer(c, model->dense_size()));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c));
  auto store = storage::NewMemoryStore();
  auto client = ps::NewLocalClient(store.get());
  worker::Trainer trainer(to, model.get(), dense_opt.get(), client.get(), &metrics);
  RETURN_IF_ERROR(trainer.DeclareTables());

  ASSIGN_OR_RETURN(auto train_stream, OpenBatchSource(c, job.data().train(), /*training=*/true));
  std::unique_ptr<worker::BatchSource> valid_stream;
  if (!job.data().valid().empty()) {
    ASSIGN_OR_RETURN(valid_stream, OpenBatchSource(c, job.data().valid(), /*training=*/false));
  }
  spdlog::info("training {} ({} fields, {} dense params, {} threads) on {}",
               worker::ModelTypeName(mo.type), mo.num_fields, model->dense_size(),
               job.train().threads(), job.data().train());
  ASSIGN_OR_RETURN(worker::TrainResult result, trainer.Train(train_stream.get(), valid_stream.get()));

  std::unique_ptr<worker::EvalResult> test;
  if (!job.data().test().empty()) {
    ASSIGN_OR_RETURN(auto test_stream, OpenBatchSource(c, job.data().test(), /*training=*/false));
    ASSIGN_OR_RETURN(worker::EvalResult r, trainer.Evaluate(test_stream.get(), 0));
    test = std::make_unique<worker::EvalResult>(r);
    metrics.Write(JsonLine().Add("event", "eval").Add("split", "test").Add("step", trainer.step())
                      .Add("rows", r.rows).Add("auc", r.auc).Add("logloss", r.logloss));
    std::string skipped = test_stream->SkippedSummary();
    if (!skipped.empty()) spdlog::warn("test data: {}", skipped);
  }
  std::string model_dir;
  if (job.output().save_model()) {
    model_dir = job.output().dir() + "/model";
    char summary[256];
    std::snprintf(summary, sizeof(summary), "samples_per_s %.0f\nsteps %lld\nsamples %lld\n",
                  result.samples_per_second, static_cast<long long>(result.steps),
                  static_cast<long long>(result.samples));
    RETURN_IF_ERROR(worker::SaveModel(model_dir, model.get(), client.get(),
                                      {{"config.pbtxt", config_text}, {"train_summary.txt", summary}}));
  }
  std::printf("\nctrps train: %s done%s\n%s", job.name().c_str(),
              result.early_stopped ? " (early stopped)" : "",
              FormatSummary(result, test.get(), model_dir, metrics.path()).c_str());
  return Status::OK();
}

}  // namespace

int RunTrain(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kTrainFlags);
  if (!flags.ok() || flags->help() || !flags->Has("config")) {
    if (!flags.ok()) std::fprintf(stderr, "ctrps train: %s\n\n", flags.status().message().c_str());
    else if (!flags->help()) std::fprintf(stderr, "ctrps train: --config is required\n\n");
    std::fputs(FlagsUsage("train", "Trains a CTR model on one machine.", kTrainFlags).c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  auto config = LoadConfig(flags->Get("config"), flags->GetAll("set"));
  if (!config.ok()) {
    std::fprintf(stderr, "ctrps train: bad config: %s\n", config.status().message().c_str());
    return 2;
  }
  Status s = ValidateConfig(*config, "train");
  if (!s.ok()) {
    std::fprintf(stderr, "ctrps train: bad config: %s\n", s.message().c_str());
    return 2;
  }
  InitLogging(config->job.output().log_level());
  s = Train(*config);
  if (!s.ok()) {
    spdlog::error("train failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
