// ctrps train --config FILE [--set field.path=value ...]
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/memory.h"
#include "common/metrics_writer.h"
#include "launch/cluster.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "launch/worker_split.h"
#include "ps/client.h"
#include "ps/mpi_runtime.h"
#include "storage/embedding_store.h"
#include "worker/nn/threading.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kTrainFlags = {
    {"config", "FILE", "job config in protobuf text format (see configs/, launch/config.proto)"},
    {"set", "FIELD=VALUE", "override a config field, e.g. --set train.batch_size=4096", true},
    {"servers", "S", "under mpirun: ranks 0..S-1 serve embedding shards, the rest train "
                     "(overrides cluster.servers)"},
    {"resume", "PATH", "resume from this checkpoint, or the newest whole one under this "
                       "directory (default: checkpoint.dir's newest, if checkpoint.auto_resume)"},
};

// "1234", "12.3k", "4.56M": counts in the summary.
std::string Count(uint64_t n) {
  char buf[32];
  if (n < 10000) std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(n));
  else if (n < 1000000) std::snprintf(buf, sizeof(buf), "%.1fk", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  return buf;
}

// The embedding tables' lines of the summary: rows, and the DRAM tier and
// admission/eviction counters when those are in use.
std::string FormatTables(const std::vector<storage::TableStats>& tables) {
  storage::TableStats t;
  for (const storage::TableStats& s : tables) storage::AddTableStats(s, &t);
  std::string out = "  embedding rows   " + Count(t.rows) + " in " + std::to_string(tables.size()) +
                    " tables (" + Count(t.created) + " created, " + Count(t.lookups) +
                    " keys looked up)\n";
  if (t.dram_hits + t.dram_misses > 0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(t.dram_hits) /
                                                 static_cast<double>(t.dram_hits + t.dram_misses));
    out += "  DRAM tier        hit rate " + std::string(buf) + ", " + Count(t.dram_rows) +
           " rows resident, " + Count(t.evictions) + " evicted to disk, " + Count(t.writebacks) +
           " written back\n";
  }
  if (t.admitted + t.rejected_lookups + t.dropped_updates + t.evicted_stale + t.evicted_rare > 0)
    out += "  admission        " + Count(t.admitted) + " keys admitted; not admitted: " +
           Count(t.rejected_lookups) + " lookups, " + Count(t.dropped_updates) +
           " updates dropped; rows evicted: " + Count(t.evicted_stale) + " stale, " +
           Count(t.evicted_rare) + " rare\n";
  return out;
}

void WriteTableMetrics(const std::vector<storage::TableStats>& tables, int64_t step,
                       MetricsWriter* metrics) {
  for (const storage::TableStats& t : tables)
    metrics->Write(JsonLine().Add("event", "table").Add("step", static_cast<long long>(step))
                       .Add("table", t.table_id).Add("rows", t.rows).Add("bytes", t.bytes)
                       .Add("lookups", t.lookups).Add("created", t.created)
                       .Add("dram_rows", t.dram_rows).Add("dram_hits", t.dram_hits)
                       .Add("dram_misses", t.dram_misses).Add("dram_evictions", t.evictions)
                       .Add("writebacks", t.writebacks).Add("admitted", t.admitted)
                       .Add("rejected_lookups", t.rejected_lookups)
                       .Add("dropped_updates", t.dropped_updates)
                       .Add("evicted_stale", t.evicted_stale).Add("evicted_rare", t.evicted_rare));
}

// The process's peak RSS, against the store's DRAM budget for a tiered
// store (the one memory figure a user sets).
std::string MemoryLine(const config::JobConfig& job, int64_t peak, bool distributed) {
  if (peak < 0) return "";
  std::string out = "peak RSS " + HumanBytes(peak) + (distributed ? " (worker 0's process)" : "");
  if (job.storage().kind() == config::StorageConfig::TIERED && !distributed) {
    const int64_t budget = job.storage().dram_budget_bytes();
    char ratio[32];
    std::snprintf(ratio, sizeof(ratio), "%.1fx", static_cast<double>(peak) / budget);
    out += ", " + std::string(ratio) + " storage.dram_budget_bytes (" + HumanBytes(budget) +
           "; the rest is the model, batches and buffers)";
  }
  return out;
}

std::string FormatSummary(const worker::TrainResult& r, const worker::EvalResult* test,
                          const std::vector<storage::TableStats>& tables,
                          const std::string& model_dir, const std::string& metrics_path,
                          const std::string& memory, const std::string& worker_splits) {
  char buf[2048];
  int n = std::snprintf(
      buf, sizeof(buf),
      "\n  steps            %lld\n  samples          %lld\n  train time       %.1f s\n"
      "  samples/s        %.0f\n  time split       read %.1fs  pull %.1fs  compute %.1fs  "
      "allreduce %.1fs  push %.1fs  wait %.1fs\n"
      "  final train loss %.5f\n",
      static_cast<long long>(r.steps), static_cast<long long>(r.samples), r.train_seconds,
      r.samples_per_second, r.read_s, r.pull_s, r.compute_s, r.allreduce_s, r.push_s, r.wait_s,
      r.final_train_loss);
  std::string out(buf, n);
  out += worker_splits;
  if (r.has_valid) {
    n = std::snprintf(buf, sizeof(buf), "  valid AUC        %.5f (best %.5f)\n  valid logloss    %.5f\n",
                      r.last_valid.auc, r.best_valid.auc, r.last_valid.logloss);
    out.append(buf, n);
    if (r.restored_best && r.best_valid_step != r.steps)
      out += "  kept model       the best evaluated (step " + std::to_string(r.best_valid_step) +
             "), not the last: it is tested and saved\n";
  }
  if (test) {
    n = std::snprintf(buf, sizeof(buf), "  test AUC         %.5f\n  test logloss     %.5f\n",
                      test->auc, test->logloss);
    out.append(buf, n);
  }
  out += FormatTables(tables);
  if (r.checkpoints_written + r.checkpoints_failed > 0) {
    out += "  checkpoints      " + std::to_string(r.checkpoints_written) + " written";
    if (r.checkpoints_failed > 0)
      out += ", " + std::to_string(r.checkpoints_failed) + " FAILED" +
             (r.final_checkpoint_error.empty() ? "" : " (the final one too)") + ": see the log";
    out += "\n";
  }
  if (!memory.empty()) out += "  memory           " + memory + "\n";
  if (!model_dir.empty()) out += "  model            " + model_dir + "\n";
  out += "  metrics          " + metrics_path + "\n";
  return out;
}

// A validation or test input without a single valid row fails before
// training, not after it. Workers decide together: one worker's partition
// of a small file may be empty.
Status CheckHasRows(worker::BatchSource* s, const std::string& field, const std::string& path,
                    const WorkerRole& role) {
  worker::Batch batch;
  ASSIGN_OR_RETURN(bool any, s->Next(&batch));
  RETURN_IF_ERROR(s->Rewind());
  if (role.group && role.num_workers > 1) {
    ASSIGN_OR_RETURN(any, role.group->AnyTrue(any, "the check of " + field));
  }
  if (any) return Status::OK();
  const std::string why = s->SkippedSummary();
  return Status::InvalidArgument(field + " '" + path + "' has no valid rows" +
                                 (why.empty() ? " (no data lines)" : ": " + why));
}

}  // namespace

Status TrainWorker(const LoadedConfig& c, const WorkerRole& role) {
  const config::JobConfig& job = c.job;
  worker::SetNumThreads(job.train().threads());
  std::string config_text = ConfigToText(job);
  MetricsWriter metrics;
  if (role.chief) {
    std::error_code ec;
    std::filesystem::create_directories(job.output().dir(), ec);
    if (ec)
      return Status::IOError("cannot create output dir " + job.output().dir() + ": " + ec.message());
    std::ofstream(job.output().dir() + "/config.pbtxt") << config_text;
  }

  ASSIGN_OR_RETURN(worker::DatasetSchema schema, SchemaFor(c));
  ASSIGN_OR_RETURN(worker::ModelOptions mo, MakeModelOptions(c, schema));
  ASSIGN_OR_RETURN(auto model, worker::NewModel(mo));
  ASSIGN_OR_RETURN(auto dense_opt, MakeDenseOptimizer(c, model->dense_size()));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c));
  to.overlap_pull = role.overlap_pull;
  to.checkpoint.num_servers = role.num_servers;
  worker::Trainer trainer(to, model.get(), dense_opt.get(), role.client,
                          role.chief ? &metrics : nullptr);
  trainer.SetWorkerGroup(role.group);

  // Open every input before the first message, so a bad path fails first.
  const int wi = role.worker_index, nw = role.num_workers;
  ASSIGN_OR_RETURN(auto train_stream,
                   OpenPartitionedBatchSource(c, job.data().train(), /*training=*/true, wi, nw));
  std::unique_ptr<worker::BatchSource> valid_stream, test_stream;
  if (!job.data().valid().empty()) {
    ASSIGN_OR_RETURN(valid_stream,
                     OpenPartitionedBatchSource(c, job.data().valid(), /*training=*/false, wi, nw));
  }
  if (!job.data().test().empty()) {
    ASSIGN_OR_RETURN(test_stream,
                     OpenPartitionedBatchSource(c, job.data().test(), /*training=*/false, wi, nw));
  }
  if (valid_stream)
    RETURN_IF_ERROR(CheckHasRows(valid_stream.get(), "data.valid", job.data().valid(), role));
  if (test_stream)
    RETURN_IF_ERROR(CheckHasRows(test_stream.get(), "data.test", job.data().test(), role));
  RETURN_IF_ERROR(trainer.DeclareTables());
  std::string resumed_from;
  if (!role.resume.empty() || to.checkpoint.enabled())
    RETURN_IF_ERROR(trainer.Resume(role.resume, job.checkpoint().auto_resume(), &resumed_from));
  // A fresh run must not train on rows an earlier run left in a disk store
  // (its dense part would start over beside old embeddings): refuse, and
  // leave the store as it is. A resume dropped them before loading.
  // The one exception: rows of an earlier attempt of this very job (its
  // checkpoint dir records this store) that ended before its first commit.
  const bool disk_store = job.storage().kind() != config::StorageConfig::MEMORY;
  if (resumed_from.empty() && role.chief) {
    ASSIGN_OR_RETURN(std::vector<storage::TableStats> tables, role.client->TableStats());
    uint64_t rows = 0;
    for (const storage::TableStats& t : tables) rows += t.rows;
    const std::string& ckpt_dir = to.checkpoint.dir;
    if (rows > 0 && to.checkpoint.enabled() &&
        worker::StorePathRecorded(ckpt_dir, job.storage().path())) {
      spdlog::warn("storage.path '{}' holds {} embedding rows of an earlier attempt of this job "
                   "that ended before its first checkpoint ({} records this store and holds no "
                   "checkpoint): dropping them and starting fresh",
                   job.storage().path(), rows, ckpt_dir);
      RETURN_IF_ERROR_CTX(role.client->LoadShards({}), "dropping the earlier attempt's rows");
    } else if (rows > 0) {
      return Status::FailedPrecondition(
          "storage.path '" + job.storage().path() + "' already holds " + std::to_string(rows) +
          " embedding rows from an earlier run, and this run starts fresh (no checkpoint to "
          "resume from): delete that directory to start over, or resume from a checkpoint");
    }
    if (disk_store && to.checkpoint.enabled())
      RETURN_IF_ERROR(worker::RecordStorePath(ckpt_dir, job.storage().path()));
  }
  // A resumed run appends to the metrics of the run it continues.
  if (role.chief)
    RETURN_IF_ERROR(metrics.Open(job.output().dir() + "/metrics.jsonl",
                                 /*truncate=*/resumed_from.empty()));
  if (role.chief && !resumed_from.empty())
    metrics.Write(JsonLine().Add("event", "resume").Add("checkpoint", resumed_from)
                      .Add("step", trainer.step()));
  spdlog::info("training {} ({} fields, {} dense params, {} threads{}) on {}",
               worker::ModelTypeName(mo.type), mo.num_fields, model->dense_size(),
               job.train().threads(),
               nw > 1 ? ", worker " + std::to_string(wi) + " of " + std::to_string(nw) : "",
               job.data().train());
  // DeepLight's gradual pruning inside training (after the resume, so
  // persistent masks are rebuilt from the restored zeros).
  std::unique_ptr<compression::DeepLightPruner> pruner;
  if (job.train().has_deeplight()) {
    const compression::DeepLightOptions dl = MakeDeepLightOptions(job.train().deeplight());
    RETURN_IF_ERROR(compression::ValidateDeepLight(dl, mo, c.Where("train.deeplight")));
    pruner = std::make_unique<compression::DeepLightPruner>(
        dl, model.get(), role.client, role.group, role.chief, job.output().dir() + "/rewrite",
        role.chief ? &metrics : nullptr);
    trainer.SetHook(pruner.get());
  }
  // UMEC's constrained training (its state comes back with a resume).
  std::unique_ptr<compression::UmecSolver> umec;
  if (job.train().has_umec()) {
    if (pruner)
      return Status::InvalidArgument(c.Where("train") + ": deeplight and umec cannot both run in "
                                     "one training; chain them as compression stages");
    ASSIGN_OR_RETURN(compression::UmecNetwork net,
                     compression::UmecNetwork::Describe(*model, job.train().umec().input_only(),
                                                        c.Where("train.umec")));
    const compression::UmecOptions uo =
        MakeUmecOptions(job.train().umec(), job.train().dense_optimizer().learning_rate());
    RETURN_IF_ERROR(compression::ValidateUmec(uo, net, c.Where("train.umec")));
    umec = std::make_unique<compression::UmecSolver>(uo, std::move(net), model.get(),
                                                     role.chief ? &metrics : nullptr);
    trainer.SetHook(umec.get());
  }
  ASSIGN_OR_RETURN(worker::TrainResult result, trainer.Train(train_stream.get(), valid_stream.get()));
  std::unique_ptr<worker::Trainer> reduced_trainer;  // evaluates the model after UMEC's removal
  if (umec && trainer.step() > 0) {
    const compression::UmecSelection sel = umec->Select();
    ASSIGN_OR_RETURN(compression::UmecSurgery cut,
                     compression::RemoveGroups(*model, umec->network(), sel));
    config::JobConfig after = job;
    const UmecRemoval removed = RecordUmecRemoval(cut, mo, schema, after.mutable_model());
    after.mutable_train()->clear_umec();  // the saved model is the result
    config_text = ConfigToText(after);
    if (role.group && role.num_workers > 1)
      RETURN_IF_ERROR(role.group->AllTrue(true, "the barrier before UMEC's table drop").status());
    if (!removed.tables.empty()) RETURN_IF_ERROR(role.client->DropTables(removed.tables, role.chief));
    if (role.group && role.num_workers > 1)
      RETURN_IF_ERROR(role.group->AllTrue(true, "the barrier after UMEC's table drop").status());
    if (role.chief)
      spdlog::info("UMEC removed {} field(s) [{}], MLP {}: {:.4f} of the dense MLP multiply-adds "
                   "(budget {:.4f}, {} group(s) forced)", removed.tables.size(), removed.fields,
                   removed.mlp, sel.resource, umec->budget(), sel.forced);
    if (role.chief)
      metrics.Write(JsonLine().Add("event", "umec_removed").Add("resource", sel.resource)
                        .Add("budget", umec->budget()).Add("forced", sel.forced)
                        .Add("dropped_fields", removed.fields));
    model = std::move(cut.model);
    ASSIGN_OR_RETURN(LoadedConfig reduced, ParseConfigText(config_text, "the model after UMEC", {}));
    if (!job.data().test().empty()) {
      ASSIGN_OR_RETURN(test_stream, OpenPartitionedBatchSource(reduced, job.data().test(), false, wi, nw));
    }
    reduced_trainer = std::make_unique<worker::Trainer>(to, model.get(), nullptr, role.client,
                                                        role.chief ? &metrics : nullptr);
    reduced_trainer->SetWorkerGroup(role.group);
  }
  worker::Trainer& final_trainer = reduced_trainer ? *reduced_trainer : trainer;
  // No step at all (fresh or resumed) is a failed run, not an untrained model.
  if (trainer.step() == 0) {
    const std::string why = train_stream->SkippedSummary();
    std::string msg = "no training step was taken: data.train '" + job.data().train() + "'";
    msg += nw > 1 ? " gave none of the " + std::to_string(nw) + " workers a valid row"
                  : " has no valid rows";
    if (!why.empty()) msg += ": " + why;
    return Status::InvalidArgument(msg);
  }

  // A handful of steps trains next to nothing; unless asked for
  // (train.max_steps), say so rather than report a model as if trained.
  constexpr int64_t kFewSteps = 50;
  if (role.chief && job.train().max_steps() == 0 && trainer.step() < kFewSteps)
    spdlog::warn("only {} training steps ({} samples at train.batch_size {} over {} epoch{}): the "
                 "model has barely trained; a smaller train.batch_size or more train.epochs give "
                 "it more steps", trainer.step(), result.samples, job.train().batch_size(),
                 result.epochs_completed, result.epochs_completed == 1 ? "" : "s");
  std::unique_ptr<worker::EvalResult> test;
  if (test_stream) {
    auto evaluated = final_trainer.Evaluate(test_stream.get(), 0);
    if (!evaluated.ok()) return evaluated.status().WithContext("data.test '" + job.data().test() + "'");
    const worker::EvalResult& r = *evaluated;
    test = std::make_unique<worker::EvalResult>(r);
    if (role.chief)
      metrics.Write(JsonLine().Add("event", "eval").Add("split", "test").Add("step", trainer.step())
                        .Add("rows", r.rows).Add("auc", r.auc).Add("logloss", r.logloss));
    std::string skipped = test_stream->SkippedSummary();
    if (!skipped.empty()) spdlog::warn("test data: {}", skipped);
  }
  // Under mpirun: every worker's time split, and the slowest named.
  std::vector<WorkerSplit> splits;
  if (role.group && nw > 1) {
    const int rank = wi < static_cast<int>(role.worker_ranks.size()) ? role.worker_ranks[wi] : -1;
    ASSIGN_OR_RETURN(splits, GatherWorkerSplits(role.group, SplitOf(result, wi, rank)));
  }
  if (!role.chief) return Status::OK();
  if (!splits.empty()) {
    const WorkerSplit& slow = splits[SlowestWorker(splits)];
    spdlog::info("slowest worker: {} (rank {}), {:.2f} ms/step of its own work (read + compute)",
                 slow.worker, slow.rank, 1000.0 * slow.own_s() / std::max<int64_t>(1, slow.steps));
    WriteWorkerSplitMetrics(splits, &metrics);
  }
  std::string model_dir;
  if (job.output().save_model()) {
    model_dir = job.output().dir() + "/model";
    char summary[256];
    std::snprintf(summary, sizeof(summary), "samples_per_s %.0f\nsteps %lld\nsamples %lld\n",
                  result.samples_per_second, static_cast<long long>(result.steps),
                  static_cast<long long>(result.samples));
    RETURN_IF_ERROR(worker::SaveModel(model_dir, model.get(), role.client,
                                      {{"config.pbtxt", config_text}, {"train_summary.txt", summary}}));
  }
  // Every server's store counters (after the model is safe on disk).
  ASSIGN_OR_RETURN(std::vector<storage::TableStats> tables, role.client->TableStats());
  WriteTableMetrics(tables, trainer.step(), &metrics);
  const int64_t peak_rss = PeakRssBytes();
  metrics.Write(JsonLine().Add("event", "memory").Add("peak_rss_bytes", static_cast<long long>(peak_rss))
                    .Add("dram_budget_bytes", static_cast<long long>(job.storage().dram_budget_bytes()))
                    .Add("storage", config::StorageConfig::Kind_Name(job.storage().kind())));
  std::printf("\nctrps train: %s done%s%s\n%s", job.name().c_str(),
              nw > 1 ? (" (" + std::to_string(nw) + " workers; samples/s is worker 0's)").c_str() : "",
              result.early_stopped ? " (early stopped)" : "",
              FormatSummary(result, test.get(), tables, model_dir, metrics.path(),
                            MemoryLine(job, peak_rss, nw > 1), FormatWorkerSplits(splits)).c_str());
  std::printf("  report           %s\n", ReportCommandFor(job.output().dir()).c_str());
  // The final checkpoint is what a re-run resumes from: without it the job
  // did not do what it was asked, though its model is saved.
  if (!result.final_checkpoint_error.empty())
    return Status::IOError("the final checkpoint failed (" + result.final_checkpoint_error + ")" +
                           (model_dir.empty() ? std::string() : "; the model is saved in " + model_dir) +
                           ", but a resume from checkpoint.dir would start from an earlier "
                           "checkpoint, if any");
  return Status::OK();
}

namespace {

Status Train(const LoadedConfig& c, const std::string& resume) {
  ASSIGN_OR_RETURN(auto store, MakeEmbeddingStore(c));
  auto client = ps::NewLocalClient(store.get(),
                                   static_cast<uint32_t>(c.job.storage().virtual_shards()));
  WorkerRole role;
  role.client = client.get();
  role.resume = resume;
  return TrainWorker(c, role);
}

}  // namespace

int RunTrain(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kTrainFlags);
  if (!flags.ok() || flags->help() || !flags->Has("config")) {
    if (!flags.ok()) std::fprintf(stderr, "ctrps train: %s\n\n", flags.status().message().c_str());
    else if (!flags->help()) std::fprintf(stderr, "ctrps train: --config is required\n\n");
    std::fputs(FlagsUsage("train", "Trains a CTR model in this process, or distributed when started by mpirun.", kTrainFlags).c_str(),
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
  int servers = -1;
  if (flags->Has("servers")) {
    auto v = flags->GetInt("servers", -1);
    if (!v.ok() || *v < 0 || *v > (1 << 20)) {
      std::fprintf(stderr, "ctrps train: --servers must be a count >= 0, got '%s'\n",
                   flags->Get("servers").c_str());
      return 2;
    }
    servers = static_cast<int>(*v);
  }
  const std::string resume = flags->Get("resume");
  if (flags->Has("resume") && resume.empty()) {
    std::fprintf(stderr, "ctrps train: --resume needs a checkpoint or checkpoint directory\n");
    return 2;
  }
  if (ps::LaunchedUnderMpi()) return RunDistributedTrain(*config, servers, resume);
  InitLogging(config->job.output().log_level());
  if (servers >= 0)
    spdlog::warn("--servers {} ignored: not started by mpirun with more than one rank; training "
                 "in this process", servers);
  s = Train(*config, resume);
  if (!s.ok()) {
    spdlog::error("train failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
