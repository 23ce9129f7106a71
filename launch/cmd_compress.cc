// ctrps compress --config JOB --from MODEL_OR_CHECKPOINT [--set ...] [--servers S]
//
// Runs the plan of `compression.stages` (COMPRESSION.md) on a trained model:
// per stage a statistics pass over data.train with the model frozen, the
// eigendecompositions, the new model, the rewrite of every changed table
// where its rows live (servers under mpirun), then fine-tuning. Every stage's
// result is saved (output.dir/stages/NN-name/model), so a rerun of the same
// command resumes after the last finished stage; with checkpoint.dir set,
// the fine-tuning checkpoints too (checkpoint.dir/stage-NN), so a kill -9 at
// any moment resumes to the same model bit for bit (BSP). The model
// structure comes from the source; data, training and cluster settings from
// JOB.
//
// Files: this one (flags, the checks before anything starts, in this
// process or under mpirun), compress_plan.{h,cc} (the plan and what it reads
// from the source), compress_job.{h,cc} (one worker's job and its run over
// the stages), compress_stages.cc (the stages and the fine-tuning).
#include <cstdio>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "launch/cluster.h"
#include "launch/commands.h"
#include "launch/compress_job.h"
#include "launch/compress_plan.h"
#include "launch/job_setup.h"
#include "ps/mpi_runtime.h"
#include "worker/nn/threading.h"

namespace ctrps::launch {
namespace {

using compress::CompressJob;
using compress::OptionsWithModel;
using compress::PlanAll;
using compress::SchemaWithModel;
using compress::SourceModelConfig;

const std::vector<FlagSpec> kCompressFlags = {
    {"config", "FILE", "job config with a `compression` section (see configs/, launch/config.proto)"},
    {"from", "PATH", "the model to compress: a model directory saved by `ctrps train` or "
                     "`ctrps compress`, or a training checkpoint"},
    {"set", "FIELD=VALUE", "override a config field", true},
    {"servers", "S", "under mpirun: ranks 0..S-1 serve embedding shards, the rest work"},
    {"serving-cost", "", "also export each measured model as a bundle and time the engine's "
                         "single-row latency (bundle_bytes, row_p50_us in metrics and the "
                         "report; reads each whole table into memory, as export does)"},
};

}  // namespace

int RunCompress(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kCompressFlags);
  if (!flags.ok() || flags->help() || !flags->Has("config") || !flags->Has("from")) {
    if (!flags.ok()) std::fprintf(stderr, "ctrps compress: %s\n\n", flags.status().message().c_str());
    else if (!flags->help()) std::fprintf(stderr, "ctrps compress: --config and --from are required\n\n");
    std::fputs(FlagsUsage("compress", "Compresses a trained model with the plan in the config's "
                          "`compression` section, in this process or distributed under mpirun.",
                          kCompressFlags).c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  auto config = LoadConfig(flags->Get("config"), flags->GetAll("set"));
  if (!config.ok()) {
    std::fprintf(stderr, "ctrps compress: bad config: %s\n", config.status().message().c_str());
    return 2;
  }
  Status s = ValidateConfig(*config, "compress");
  if (!s.ok()) {
    std::fprintf(stderr, "ctrps compress: bad config: %s\n", s.message().c_str());
    return 2;
  }
  int servers = -1;
  if (flags->Has("servers")) {
    auto v = flags->GetInt("servers", -1);
    if (!v.ok() || *v < 0 || *v > (1 << 20)) {
      std::fprintf(stderr, "ctrps compress: --servers must be a count >= 0, got '%s'\n",
                   flags->Get("servers").c_str());
      return 2;
    }
    servers = static_cast<int>(*v);
  }
  const std::string from = flags->Get("from");
  // A bad source or plan is refused before anything starts (every rank).
  {
    auto model = SourceModelConfig(from);
    if (!model.ok()) {
      std::fprintf(stderr, "ctrps compress: %s\n", model.status().message().c_str());
      return 2;
    }
    auto schema = SchemaWithModel(*config, *model, from + "/config");
    StatusOr<worker::ModelOptions> mo =
        schema.ok() ? OptionsWithModel(*config, *model, from + "/config")
                    : StatusOr<worker::ModelOptions>(schema.status());
    Status plan = mo.ok() ? PlanAll(*config, *schema, *mo).status() : mo.status();
    if (!plan.ok()) {
      std::fprintf(stderr, "ctrps compress: bad plan: %s\n", plan.message().c_str());
      return 2;
    }
  }
  const bool serving_cost = flags->Has("serving-cost");
  auto work = [&from, serving_cost](const LoadedConfig& c, const WorkerRole& role) {
    worker::SetNumThreads(c.job.train().threads());
    CompressJob job(c, role, from, serving_cost);
    return job.Run();
  };
  if (ps::LaunchedUnderMpi()) return RunDistributed(*config, servers, "", "compress", work);
  InitLogging(config->job.output().log_level());
  auto store = MakeEmbeddingStore(*config);
  if (!store.ok()) {
    spdlog::error("compress failed: {}", store.status().ToString());
    return 1;
  }
  auto client = ps::NewLocalClient(store->get(),
                                   static_cast<uint32_t>(config->job.storage().virtual_shards()));
  WorkerRole role;
  role.client = client.get();
  s = work(*config, role);
  if (!s.ok()) {
    spdlog::error("compress failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
