// ctrps compress, the stages: AFM / weight SVD (statistics pass, new model,
// table rewrite), DeepLight and UMEC (and its baselines), and the
// fine-tuning every stage ends with (see compress_job.h).
#include "launch/compress_job.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "compression/afm.h"
#include "compression/deeplight.h"
#include "launch/job_setup.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::launch::compress {

using compression::AfmPlan;

Status CompressJob::RunStage(int i, const AfmPlan& plan) {
  const config::CompressionStage& st = c_.job.compression().stages(i);
  const std::string name = StageName(st, i);
  const auto t0 = std::chrono::steady_clock::now();
  // 1. Statistics (the frozen model over the training data).
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c_));
  to.checkpoint = {};
  ASSIGN_OR_RETURN(auto trainer, NewTrainer(to, nullptr));
  std::unique_ptr<compression::AfmStatistics> stats;
  std::vector<Eigen::MatrixXd> grams(model_->options().num_fields);
  if (plan.basis == AfmPlan::Basis::kOutputFeatures) {
    ASSIGN_OR_RETURN(stats, compression::AfmStatistics::Start(plan, model_.get()));
    std::unique_ptr<ps::KeepAlive> alive;
    if (role_.group) alive = role_.group->StayAlive();
    if (role_.chief) trainer->ShowPassProgress("[" + name + "] statistics");
    RETURN_IF_ERROR(trainer->ObservePass(stats_.get(), plan.max_rows,
                                         [&](const worker::SparseBatch& b, int n) -> Status {
                                           return stats->Observe(b, n);
                                         }));
    alive.reset();
    RETURN_IF_ERROR(stats->Combine(role_.group));
    if (stats->rows() <= 0)
      return Status::InvalidArgument("stage " + name + ": the statistics pass saw no row of data.train");
  } else {
    const auto fields = plan.FieldSettings(model_->options());
    for (int f = 0; f < model_->options().num_fields; ++f)
      if (fields[f].set()) {
        const int d = model_->options().FieldDim(f);
        ASSIGN_OR_RETURN(grams[f], compression::TableGram(role_.client, model_->options().TableOf(f),
                                                          model_->RowWidth(f) - d, d));
      }
    (void)0;
  }
  const double stats_s = Seconds(t0);
  // 2. Eigendecompositions and the new model.
  const auto t1 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(compression::AfmOutcome out, compression::BuildAfm(plan, *model_, stats.get(), grams));
  stats.reset();  // its taps point into the old model
  const double eig_s = Seconds(t1);
  // 3. The tables, where their rows live.
  const auto t2 = std::chrono::steady_clock::now();
  model_ = std::move(out.model);
  SetCompressedStructure(out.options, schema_, &model_config_);
  std::vector<ps::TableConfig> configs;
  {
    worker::Trainer declare(to, model_.get(), nullptr, role_.client, nullptr);
    configs = declare.TableConfigs();
  }
  RETURN_IF_ERROR(Barrier("the barrier before the table rewrite of stage " + name));
  const std::string scratch = ScratchDir();
  uint64_t rewritten = 0;
  for (const auto& tc : out.tables) {
    RETURN_IF_ERROR_CTX(role_.client->RewriteTable(configs[tc.field],
                                                   role_.chief ? &tc.change : nullptr, scratch),
                        "stage " + name + ", table " + std::to_string(tc.field));
  }
  RETURN_IF_ERROR(Barrier("the barrier after the table rewrite of stage " + name));
  const double rewrite_s = Seconds(t2);
  if (role_.chief) {
    ASSIGN_OR_RETURN(std::vector<storage::TableStats> ts, role_.client->TableStats());
    for (const auto& tc : out.tables)
      for (const storage::TableStats& t : ts)
        if (t.table_id == model_->options().TableOf(tc.field)) rewritten += t.rows;
    for (const auto& l : out.report) {
      spdlog::info("[{}] {}: width {} -> rank {}, {:.4f} of the variance kept (dropped {:.4g})",
                   name, l.what, l.width, l.rank, l.kept, l.dropped);
      metrics_.Write(JsonLine().Add("event", "compress_rank").Add("stage", name)
                         .Add("what", l.what).Add("width", l.width).Add("rank", l.rank)
                         .Add("kept", l.kept).Add("dropped", l.dropped));
    }
    spdlog::info("[{}] statistics {:.2f} s, eigendecompositions {:.3f} s, rewrite {:.2f} s "
                 "({} rows, {:.0f} rows/s)", name, stats_s, eig_s, rewrite_s, rewritten,
                 rewrite_s > 0 ? rewritten / rewrite_s : 0.0);
    metrics_.Write(JsonLine().Add("event", "compress_stage").Add("stage", name)
                       .Add("stats_s", stats_s).Add("eig_s", eig_s).Add("rewrite_s", rewrite_s)
                       .Add("rewritten_rows", rewritten));
  }
  return Status::OK();
}

Status CompressJob::RunUmec(int i) {
  const config::CompressionStage& st = c_.job.compression().stages(i);
  const config::UmecConfig& u = st.umec();
  const std::string name = StageName(st, i);
  const std::string where = c_.Where("compression.stages[" + std::to_string(i) + "].umec");
  const auto t0 = std::chrono::steady_clock::now();
  // 1. The constrained training.
  const config::JobConfig job = PhaseJob(c_.job, model_config_, u.train(), i, "-umec");
  ASSIGN_OR_RETURN(LoadedConfig tc, ParseConfigText(ConfigToText(job), "the UMEC training of " + name, {}));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(tc));
  to.overlap_pull = role_.overlap_pull;
  to.checkpoint.num_servers = role_.num_servers;
  ASSIGN_OR_RETURN(auto dense_opt, MakeDenseOptimizer(tc, model_->dense_size()));
  ASSIGN_OR_RETURN(auto trainer, NewTrainer(to, dense_opt.get()));
  ASSIGN_OR_RETURN(compression::UmecNetwork net,
                   compression::UmecNetwork::Describe(*model_, u.input_only(), where));
  compression::UmecOptions uo =
      MakeUmecOptions(u, job.train().dense_optimizer().learning_rate(), st.method());
  uo.start_step = 0;  // the source model is the warm-up
  RETURN_IF_ERROR(compression::ValidateUmec(uo, net, where));
  compression::UmecSolver solver(uo, net, model_.get(), role_.chief ? &metrics_ : nullptr);
  // MAGNITUDE_PRUNING and UNIFORM_THINNING may skip it (umec.train.epochs 0).
  if (u.train().epochs() > 0) {
    trainer->SetHook(&solver);
    std::string resumed_from;
    if (to.checkpoint.enabled()) RETURN_IF_ERROR(trainer->Resume("", true, &resumed_from));
    if (!resumed_from.empty()) spdlog::info("[{}] UMEC training resumes from {}", name, resumed_from);
    spdlog::info("[{}] constrained training: budget {:.4f} of the dense MLP multiply-adds, {} layers of groups",
                 name, solver.budget(), net.layers().size());
    ASSIGN_OR_RETURN(worker::TrainResult r, trainer->Train(train_.get(), valid_.get()));
    (void)r;
  }
  trainer.reset();
  // 2. The choice and the removal.
  const compression::UmecSelection sel = solver.Select();
  ASSIGN_OR_RETURN(compression::UmecSurgery cut, compression::RemoveGroups(*model_, net, sel));
  const UmecRemoval removed = RecordUmecRemoval(cut, model_->options(), schema_, &model_config_);
  RETURN_IF_ERROR(Barrier("the barrier before the table drop of stage " + name));
  if (!removed.tables.empty())
    RETURN_IF_ERROR_CTX(role_.client->DropTables(removed.tables, role_.chief), "stage " + name);
  RETURN_IF_ERROR(Barrier("the barrier after the table drop of stage " + name));
  model_ = std::move(cut.model);
  RETURN_IF_ERROR(OpenData());  // the readers skip the dropped fields now
  if (role_.chief) {
    spdlog::info("[{}] UMEC removed {} field(s) [{}] and kept MLP {}: {:.4f} of the dense MLP "
                 "multiply-adds (budget {:.4f}{})", name, removed.tables.size(), removed.fields, removed.mlp,
                 sel.resource, solver.budget(),
                 sel.forced > 0 ? fmt::format(", {} group(s) added past ceil(s) to meet it", sel.forced) : "");
    metrics_.Write(JsonLine().Add("event", "compress_umec").Add("stage", name)
                       .Add("resource", sel.resource).Add("budget", solver.budget())
                       .Add("forced", sel.forced).Add("dropped_fields", removed.fields)
                       .Add("mlp_dims", removed.mlp).Add("seconds", Seconds(t0)));
  }
  return Status::OK();
}

Status CompressJob::FineTune(int i, bool resume) {
  const config::CompressionStage& st = c_.job.compression().stages(i);
  const config::FineTune& ft = st.fine_tune();
  const std::string name = StageName(st, i);
  const config::JobConfig job = PhaseJob(c_.job, model_config_, ft, i, "");
  ASSIGN_OR_RETURN(LoadedConfig ftc, ParseConfigText(ConfigToText(job), "fine-tuning of " + name, {}));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(ftc));
  // With early stopping, the model the stage made is the first candidate:
  // fine-tuning keeps it when no step improves on it.
  // (Not DeepLight: its start is the unpruned model.)
  to.evaluate_at_start = ft.early_stopping_patience() > 0 && !IsDeepLight(st);
  to.overlap_pull = role_.overlap_pull;
  to.checkpoint.num_servers = role_.num_servers;
  ASSIGN_OR_RETURN(auto dense_opt, MakeDenseOptimizer(ftc, model_->dense_size()));
  ASSIGN_OR_RETURN(auto trainer, NewTrainer(to, dense_opt.get()));
  std::string resumed_from;
  if (to.checkpoint.enabled()) RETURN_IF_ERROR(trainer->Resume("", true, &resumed_from));
  if (resume && resumed_from.empty())
    return Status::Internal("stage " + name + ": its fine-tuning checkpoint could not be resumed");
  // DeepLight prunes during this training (after the resume: persistent
  // masks are rebuilt from the restored zeros).
  std::unique_ptr<compression::DeepLightPruner> pruner;
  if (IsDeepLight(st)) {
    compression::DeepLightOptions dl = MakeDeepLightOptions(st.deeplight());
    dl.start_step = 0;  // the source model is the warm-up
    pruner = std::make_unique<compression::DeepLightPruner>(
        dl, model_.get(), role_.client, role_.group, role_.chief, ScratchDir(),
        role_.chief ? &metrics_ : nullptr);
    trainer->SetHook(pruner.get());
  }
  if (!resumed_from.empty()) spdlog::info("[{}] fine-tuning resumes from {}", name, resumed_from);
  if (ft.epochs() == 0 && resumed_from.empty()) return Status::OK();
  spdlog::info("[{}] fine-tuning {} ({} dense params)", name,
               worker::ModelTypeName(model_->options().type), model_->dense_size());
  ASSIGN_OR_RETURN(worker::TrainResult r, trainer->Train(train_.get(), valid_.get()));
  (void)r;
  return Status::OK();
}


}  // namespace ctrps::launch::compress
