// ctrps compress, one job: setup, measurements and the run over the plan's
// stages (see compress_job.h).
#include "launch/compress_job.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/memory.h"
#include "compression/afm.h"
#include "compression/deeplight.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::launch::compress {

namespace fs = std::filesystem;
using compression::AfmPlan;

std::string CompressJob::StageDir(int i) const {
  char n[32];
  std::snprintf(n, sizeof(n), "%02d-", i);
  return c_.job.output().dir() + "/stages/" + n + StageName(c_.job.compression().stages(i), i);
}

std::string CompressJob::ScratchDir() const {
  const std::string& s = c_.job.compression().scratch_dir();
  return s.empty() ? c_.job.output().dir() + "/rewrite" : s;
}

std::string CompressJob::ConfigText() const {
  config::JobConfig job = c_.job;
  *job.mutable_model() = model_config_;
  return ConfigToText(job);
}

Status CompressJob::Barrier(const std::string& what) {
  if (!role_.group || role_.num_workers <= 1) return Status::OK();
  return role_.group->AllTrue(true, what).status();
}

// The data streams (and schema_) of the current model: a model with
// removed fields reads only the fields it keeps.
Status CompressJob::OpenData() {
  ASSIGN_OR_RETURN(LoadedConfig mc, JobWithModel(c_, model_config_, "the job with the model's structure"));
  ASSIGN_OR_RETURN(schema_, SchemaFor(mc));
  const auto& d = c_.job.data();
  const int wi = role_.worker_index, nw = role_.num_workers;
  ASSIGN_OR_RETURN(train_, OpenPartitionedBatchSource(mc, d.train(), true, wi, nw));
  ASSIGN_OR_RETURN(stats_, OpenPartitionedBatchSource(mc, d.train(), false, wi, nw));
  valid_.reset();
  test_.reset();
  if (!d.valid().empty()) {
    ASSIGN_OR_RETURN(valid_, OpenPartitionedBatchSource(mc, d.valid(), false, wi, nw));
  }
  if (!d.test().empty()) {
    ASSIGN_OR_RETURN(test_, OpenPartitionedBatchSource(mc, d.test(), false, wi, nw));
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<worker::Trainer>> CompressJob::NewTrainer(
    const worker::TrainerOptions& to, worker::DenseOptimizer* opt) {
  auto t = std::make_unique<worker::Trainer>(to, model_.get(), opt, role_.client,
                                             role_.chief ? &metrics_ : nullptr);
  t->SetWorkerGroup(role_.group);
  return t;
}

Status CompressJob::LoadSource(const std::string& dir) {
  ASSIGN_OR_RETURN(model_config_, SourceModelConfig(dir));
  RETURN_IF_ERROR(OpenData());
  ASSIGN_OR_RETURN(worker::ModelOptions mo, OptionsWithModel(c_, model_config_, dir + "/config"));
  ASSIGN_OR_RETURN(model_, worker::NewModel(mo));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c_));
  worker::Trainer declare(to, model_.get(), nullptr, role_.client, nullptr);
  RETURN_IF_ERROR(declare.DeclareTables());
  if (fs::is_regular_file(fs::path(dir) / "MANIFEST"))
    return worker::LoadModel(dir, model_.get(), role_.client);
  return worker::LoadCheckpointWeights(dir, model_.get(), role_.client);
}

Status CompressJob::Measure(const std::string& what, double seconds) {
  Row r;
  r.what = what;
  r.seconds = seconds;
  ASSIGN_OR_RETURN(r.size, ModelSize(model_.get(), role_.client));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c_));
  to.checkpoint = {};
  ASSIGN_OR_RETURN(auto trainer, NewTrainer(to, nullptr));
  if (valid_) {
    if (role_.chief) trainer->ShowPassProgress("[" + what + "] valid");
    ASSIGN_OR_RETURN(r.valid, trainer->Evaluate(valid_.get(), c_.job.data().max_eval_rows()));
    r.has_valid = true;
  }
  if (test_) {
    if (role_.chief) trainer->ShowPassProgress("[" + what + "] test");
    ASSIGN_OR_RETURN(r.test, trainer->Evaluate(test_.get(), 0));
    r.has_test = true;
  }
  // Serving cost (chief only: the bundle holds every shard's rows).
  worker::BatchSource* timing_rows = valid_ ? valid_.get() : test_ ? test_.get() : stats_.get();
  if (serving_cost_ && role_.chief) {
    auto cost = MeasureServingCost(c_, schema_, model_.get(), role_.client, timing_rows,
                                   c_.job.output().dir() + "/serving-bundle", 2000);
    if (cost.ok()) {
      r.serving = *cost;
      r.has_serving = true;
    } else if (cost.status().code() == Status::Code::kUnimplemented) {
      // A model the bundle format cannot hold (none today; ONNX cannot hold
      // removed fields yet).
      spdlog::warn("[{}] --serving-cost: {}", what, cost.status().message());
    } else {
      return cost.status().WithContext("--serving-cost of " + what);
    }
  }
  if (role_.chief) {
    JsonLine line;
    line.Add("event", "compress_model").Add("model", what).Add("params", r.size.params)
        .Add("bytes", r.size.bytes).Add("rows", r.size.rows).Add("seconds", seconds);
    if (r.has_valid) line.Add("valid_auc", r.valid.auc).Add("valid_logloss", r.valid.logloss);
    if (r.has_test) line.Add("test_auc", r.test.auc).Add("test_logloss", r.test.logloss);
    if (r.has_serving)
      line.Add("bundle_bytes", r.serving.bundle_bytes).Add("row_p50_us", r.serving.row_p50_us)
          .Add("row_p99_us", r.serving.row_p99_us).Add("rows_timed", r.serving.rows_timed);
    metrics_.Write(line);
  }
  rows_.push_back(r);
  return Status::OK();
}


Status CompressJob::Run() {
  const auto& stages = c_.job.compression().stages();
  // Where to start: after the last stage whose model is saved.
  int first = 0;
  std::string source = from_;
  while (first < stages.size() && fs::is_regular_file(fs::path(StageDir(first)) / "model/MANIFEST")) {
    source = StageDir(first) + "/model";
    ++first;
  }
  // A stage whose fine-tuning checkpoint exists resumes there.
  bool resume_fine_tune = false;
  std::string ckpt_root;
  // A committed checkpoint: its manifest, in a directory not named ckpt-N.tmp
  // (a kill between the manifest's write and the rename leaves one; the
  // trainer removes it).
  auto committed = [](const fs::directory_entry& e) {
    const std::string name = e.path().filename().string();
    return fs::is_regular_file(e.path() / worker::kCheckpointManifestName) &&
           !(name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0);
  };
  if (first < stages.size() && !c_.job.checkpoint().dir().empty()) {
    char n[32];
    std::snprintf(n, sizeof(n), "/stage-%02d", first);
    ckpt_root = c_.job.checkpoint().dir() + n;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(ckpt_root, ec))
      if (committed(e)) resume_fine_tune = true;
  }
  // Plans are checked against the source model before any work.
  ASSIGN_OR_RETURN(model_config_, SourceModelConfig(from_));
  std::vector<AfmPlan> plans;
  {
    ASSIGN_OR_RETURN(schema_, SchemaWithModel(c_, model_config_, from_ + "/config"));
    ASSIGN_OR_RETURN(worker::ModelOptions mo, OptionsWithModel(c_, model_config_, from_ + "/config"));
    ASSIGN_OR_RETURN(plans, PlanAll(c_, schema_, mo));
  }
  if (role_.chief) {
    std::error_code ec;
    fs::create_directories(c_.job.output().dir(), ec);
    if (ec) return Status::IOError("cannot create output dir " + c_.job.output().dir() + ": " + ec.message());
    RETURN_IF_ERROR(metrics_.Open(c_.job.output().dir() + "/metrics.jsonl", /*truncate=*/first == 0 && !resume_fine_tune));
    metrics_.Write(JsonLine().Add("event", "compress_begin").Add("from", from_)
                       .Add("stages", stages.size()).Add("first_stage", first));
  }
  if (first > 0) spdlog::info("compress: stages 0..{} are done; resuming from {}", first - 1, source);
  if (resume_fine_tune) {
    // The compressed structure is in the checkpoint's config.
    std::string newest;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(ckpt_root, ec))
      if (committed(e) && e.path().string() > newest) newest = e.path().string();
    ASSIGN_OR_RETURN(model_config_, SourceModelConfig(newest));
    RETURN_IF_ERROR(OpenData());
    ASSIGN_OR_RETURN(worker::ModelOptions mo, OptionsWithModel(c_, model_config_, newest));
    ASSIGN_OR_RETURN(model_, worker::NewModel(mo));
    ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c_));
    worker::Trainer declare(to, model_.get(), nullptr, role_.client, nullptr);
    RETURN_IF_ERROR(declare.DeclareTables());
  } else {
    RETURN_IF_ERROR_CTX(LoadSource(source), "loading " + source);
    RETURN_IF_ERROR(Barrier("the barrier after loading " + source));
    if (first == 0) RETURN_IF_ERROR(Measure("uncompressed", 0));
  }
  for (int i = first; i < stages.size(); ++i) {
    const std::string name = StageName(stages[i], i);
    const auto t0 = std::chrono::steady_clock::now();
    const bool resuming = i == first && resume_fine_tune;
    if (!resuming && IsUmec(stages[i])) {
      RETURN_IF_ERROR_CTX(RunUmec(i), "stage " + name);
      RETURN_IF_ERROR(Measure(name + " (before fine-tuning)", Seconds(t0)));
    } else if (!resuming && IsDeepLight(stages[i])) {
      RETURN_IF_ERROR(compression::ValidateDeepLight(
          MakeDeepLightOptions(stages[i].deeplight()), model_->options(),
          c_.Where("compression.stages[" + std::to_string(i) + "].deeplight")));
    } else if (!resuming) {
      // Planned again on the current model (an earlier UMEC stage may
      // have removed fields).
      ASSIGN_OR_RETURN(plans[i], MakePlan(stages[i], schema_,
                                          c_.Where("compression.stages[" + std::to_string(i) + "]")));
      RETURN_IF_ERROR_CTX(compression::ValidateAfmPlan(plans[i], model_->options(),
                                                       c_.Where("compression.stages[" + std::to_string(i) + "].afm")),
                          "stage " + name);
      RETURN_IF_ERROR(RunStage(i, plans[i]));
      RETURN_IF_ERROR(Measure(name + " (before fine-tuning)", Seconds(t0)));
    }
    RETURN_IF_ERROR(FineTune(i, resuming));
    RETURN_IF_ERROR(Measure(name, Seconds(t0)));
    if (role_.chief)
      RETURN_IF_ERROR(worker::SaveModel(StageDir(i) + "/model", model_.get(), role_.client,
                                        {{"config.pbtxt", ConfigText()}}));
    RETURN_IF_ERROR(Barrier("the barrier after stage " + name));
  }
  if (!role_.chief) return Status::OK();
  const std::string out_dir = c_.job.output().dir() + "/model";
  RETURN_IF_ERROR(worker::SaveModel(out_dir, model_.get(), role_.client,
                                    {{"config.pbtxt", ConfigText()}}));
  // The before/after table.
  std::string table = "\n  model                                   params        bytes   valid AUC  valid logloss   test AUC  test logloss   seconds";
  table += serving_cost_ ? "  bundle bytes  row p50 us\n" : "\n";
  const Row* base = rows_.empty() ? nullptr : &rows_.front();
  for (const Row& r : rows_) {
    char line[512];
    std::snprintf(line, sizeof(line), "  %-36s %10llu %12llu  %10s %14s %10s %13s %9.1f\n",
                  r.what.c_str(), static_cast<unsigned long long>(r.size.params),
                  static_cast<unsigned long long>(r.size.bytes),
                  r.has_valid ? fmt::format("{:.5f}", r.valid.auc).c_str() : "-",
                  r.has_valid ? fmt::format("{:.5f}", r.valid.logloss).c_str() : "-",
                  r.has_test ? fmt::format("{:.5f}", r.test.auc).c_str() : "-",
                  r.has_test ? fmt::format("{:.5f}", r.test.logloss).c_str() : "-", r.seconds);
    table += line;
    if (r.has_serving) {
      table.pop_back();  // the line's newline
      table += fmt::format(" {:13} {:11.2f}\n", r.serving.bundle_bytes, r.serving.row_p50_us);
    }
  }
  if (base && rows_.size() > 1) {
    const Row& last = rows_.back();
    table += fmt::format("  compression: {:.2f}x fewer bytes, {:.2f}x fewer parameters", 
                         static_cast<double>(base->size.bytes) / std::max<uint64_t>(1, last.size.bytes),
                         static_cast<double>(base->size.params) / std::max<uint64_t>(1, last.size.params));
    if (base->has_test && last.has_test)
      table += fmt::format("; test AUC {:+.5f}", last.test.auc - base->test.auc);
    table += "\n";
  }
  // Peak memory of this process (with TIERED tables: against the budget).
  const int64_t peak = PeakRssBytes();
  std::string memory = "  peak RSS " + HumanBytes(peak);
  if (c_.job.storage().kind() == config::StorageConfig::TIERED)
    memory += " (storage.dram_budget_bytes " + HumanBytes(c_.job.storage().dram_budget_bytes()) + ")";
  metrics_.Write(JsonLine().Add("event", "compress_done").Add("model", out_dir)
                     .Add("peak_rss_bytes", static_cast<long long>(peak)));
  std::printf("\nctrps compress: %s done (%d stages)\n%s%s\n  model    %s\n  metrics  %s\n"
              "  report   %s\n",
              c_.job.name().c_str(), static_cast<int>(stages.size()), table.c_str(),
              memory.c_str(), out_dir.c_str(), metrics_.path().c_str(),
              ReportCommandFor(c_.job.output().dir()).c_str());
  return Status::OK();
}

}  // namespace ctrps::launch::compress
