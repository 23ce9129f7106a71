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
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/memory.h"
#include "common/metrics_writer.h"
#include "compression/afm.h"
#include "compression/deeplight.h"
#include "launch/cluster.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "launch/serving_cost.h"
#include "ps/mpi_runtime.h"
#include "worker/nn/threading.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::launch {
namespace {

namespace fs = std::filesystem;
using compression::AfmPlan;
using compression::RankSetting;

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

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The model section of a saved model or checkpoint.
StatusOr<config::ModelConfig> SourceModelConfig(const std::string& from) {
  std::string text;
  if (fs::is_regular_file(fs::path(from) / "MANIFEST")) {
    ASSIGN_OR_RETURN(text, worker::ReadFileToString(from + "/config.pbtxt"));
  } else if (fs::is_regular_file(fs::path(from) / worker::kCheckpointManifestName)) {
    ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, worker::ReadCheckpointManifest(from));
    text = m.config_text();
  } else {
    return Status::NotFound("--from " + from + " is neither a model saved by `ctrps train` / "
                            "`ctrps compress` (MANIFEST) nor a checkpoint (" +
                            std::string(worker::kCheckpointManifestName) + ")");
  }
  ASSIGN_OR_RETURN(LoadedConfig src, ParseConfigText(text, from + "/config", {}));
  return src.job.model();
}

// The options of the model `model` describes, in the job `c` (the
// structure comes from the source model, the rest from the job).
// The job `c` with the model section `model`.
StatusOr<LoadedConfig> JobWithModel(const LoadedConfig& c, const config::ModelConfig& model,
                                    const std::string& name) {
  config::JobConfig job = c.job;
  *job.mutable_model() = model;
  return ParseConfigText(ConfigToText(job), name, {});
}

StatusOr<worker::ModelOptions> OptionsWithModel(const LoadedConfig& c,
                                                const config::ModelConfig& model,
                                                const std::string& name) {
  ASSIGN_OR_RETURN(LoadedConfig src, JobWithModel(c, model, name));
  ASSIGN_OR_RETURN(worker::DatasetSchema schema, SchemaFor(src));
  return MakeModelOptions(src, schema);
}

// The fields the model `model` reads, in the job `c`.
StatusOr<worker::DatasetSchema> SchemaWithModel(const LoadedConfig& c,
                                                const config::ModelConfig& model,
                                                const std::string& name) {
  ASSIGN_OR_RETURN(LoadedConfig src, JobWithModel(c, model, name));
  return SchemaFor(src);
}

StatusOr<int> FieldIndex(const worker::DatasetSchema& schema, const std::string& name,
                         const std::string& where) {
  for (size_t i = 0; i < schema.field_names.size(); ++i)
    if (schema.field_names[i] == name) return static_cast<int>(i);
  if (!name.empty() && name.size() < 9 && std::all_of(name.begin(), name.end(), ::isdigit)) {
    const int i = std::stoi(name);
    if (i < schema.num_fields()) return i;
  }
  return Status::InvalidArgument(where + ": unknown field '" + name + "'");
}

RankSetting Rank(const config::RankConfig& r, bool relu) { return {r.rank(), r.variance(), relu}; }

StatusOr<AfmPlan> MakePlan(const config::CompressionStage& st, const worker::DatasetSchema& schema,
                           const std::string& where) {
  AfmPlan p;
  p.basis = st.method() == config::CompressionStage::WEIGHT_SVD ? AfmPlan::Basis::kWeightSvd
                                                                : AfmPlan::Basis::kOutputFeatures;
  const config::AfmStage& a = st.afm();
  for (const auto& l : a.layers()) p.layers.push_back({l.layer(), Rank(l.rank(), l.relu())});
  if (a.has_embeddings()) p.embeddings = Rank(a.embeddings(), false);
  for (int i = 0; i < a.fields_size(); ++i) {
    ASSIGN_OR_RETURN(int f, FieldIndex(schema, a.fields(i).field(),
                                       where + ".afm.fields[" + std::to_string(i) + "]"));
    p.fields.push_back({f, Rank(a.fields(i).rank(), false)});
  }
  p.max_rows = a.max_rows();
  return p;
}

std::string StageName(const config::CompressionStage& st, int i) {
  if (!st.name().empty()) return st.name();
  const char* m = st.method() == config::CompressionStage::WEIGHT_SVD  ? "weight_svd"
                  : st.method() == config::CompressionStage::DEEPLIGHT ? "deeplight"
                  : st.method() == config::CompressionStage::UMEC      ? "umec"
                  : st.method() == config::CompressionStage::MAGNITUDE_PRUNING ? "magnitude"
                  : st.method() == config::CompressionStage::UNIFORM_THINNING  ? "uniform"
                  : st.method() == config::CompressionStage::GROUP_LASSO       ? "group_lasso"
                                                                       : "afm";
  return std::string(m) + "-" + std::to_string(i);
}

bool IsDeepLight(const config::CompressionStage& st) {
  return st.method() == config::CompressionStage::DEEPLIGHT;
}

// UMEC or one of its baselines: the same stage, another selector.
bool IsUmec(const config::CompressionStage& st) {
  switch (st.method()) {
    case config::CompressionStage::UMEC:
    case config::CompressionStage::MAGNITUDE_PRUNING:
    case config::CompressionStage::UNIFORM_THINNING:
    case config::CompressionStage::GROUP_LASSO:
      return true;
    default:
      return false;
  }
}

// The job's settings of one phase of a stage (its constrained training or
// its fine-tuning): `ft` applied to the training section, checkpoints in
// checkpoint.dir/stage-NN<suffix>.
config::JobConfig PhaseJob(config::JobConfig job, const config::ModelConfig& model,
                           const config::FineTune& ft, int stage, const std::string& suffix) {
  *job.mutable_model() = model;
  auto* t = job.mutable_train();
  t->set_epochs(std::max(1, ft.epochs()));
  t->set_max_steps(ft.max_steps());
  t->set_early_stopping_patience(ft.early_stopping_patience());
  t->set_eval_every_steps(ft.eval_every_steps());
  if (ft.dense_learning_rate() > 0) t->mutable_dense_optimizer()->set_learning_rate(ft.dense_learning_rate());
  if (ft.sparse_learning_rate() > 0) t->mutable_sparse_optimizer()->set_learning_rate(ft.sparse_learning_rate());
  t->clear_deeplight();
  t->clear_umec();
  if (!job.checkpoint().dir().empty()) {
    char n[32];
    std::snprintf(n, sizeof(n), "/stage-%02d", stage);
    job.mutable_checkpoint()->set_dir(job.checkpoint().dir() + n + suffix);
  }
  return job;
}



// A UMEC stage's settings against the model it meets.
Status CheckUmec(const config::CompressionStage& st, const worker::ModelOptions& mo,
                 const std::string& where) {
  const config::UmecConfig& u = st.umec();
  auto model = worker::NewModel(mo);
  if (!model.ok()) return model.status();
  ASSIGN_OR_RETURN(compression::UmecNetwork net,
                   compression::UmecNetwork::Describe(**model, u.input_only(), where));
  return compression::ValidateUmec(MakeUmecOptions(u, 1.0, st.method()), net, where);
}

// Every plan checked against the model it will meet (earlier stages'
// layers and fields marked as compressed), before any work.
StatusOr<std::vector<AfmPlan>> PlanAll(const LoadedConfig& c, const worker::DatasetSchema& schema,
                                       worker::ModelOptions model) {
  std::vector<AfmPlan> plans;
  const auto& stages = c.job.compression().stages();
  for (int i = 0; i < stages.size(); ++i) {
    const std::string where = c.Where("compression.stages[" + std::to_string(i) + "]");
    if (IsDeepLight(stages[i])) {
      RETURN_IF_ERROR(compression::ValidateDeepLight(MakeDeepLightOptions(stages[i].deeplight()),
                                                     model, where + ".deeplight"));
      plans.emplace_back();
      continue;
    }
    if (IsUmec(stages[i])) {
      RETURN_IF_ERROR(CheckUmec(stages[i], model, where + ".umec"));
      plans.emplace_back();
      continue;  // what it removes is known only after it ran
    }
    ASSIGN_OR_RETURN(AfmPlan p, MakePlan(stages[i], schema, where));
    RETURN_IF_ERROR(compression::ValidateAfmPlan(p, model, where + ".afm"));
    for (const auto& [layer, r] : p.layers) model.low_rank.push_back({layer, 1, false});
    const auto fields = p.FieldSettings(model);
    for (int f = 0; f < model.num_fields; ++f)
      if (fields[f].set()) {
        if (model.emb_decode_dims.empty()) model.emb_decode_dims.assign(model.num_fields, 0);
        model.emb_decode_dims[f] = model.FieldDim(f);
        model.emb_dims[f] = 1;
      }
    plans.push_back(std::move(p));
  }
  return plans;
}

struct Size {
  uint64_t params = 0, bytes = 0, rows = 0;
};

// Parameters and bytes (fp32, as a saved model or bundle holds them: rows
// with their keys) of the model and its tables.
StatusOr<Size> ModelSize(worker::Model* model, ps::EmbeddingClient* client) {
  Size s;
  s.params = model->dense_size();
  s.bytes = model->dense_size() * 4;
  ASSIGN_OR_RETURN(std::vector<storage::TableStats> tables, client->TableStats());
  for (const storage::TableStats& t : tables) {
    const int w = client->Width(t.table_id);
    s.rows += t.rows;
    s.params += t.rows * w;
    s.bytes += t.rows * (8 + 4 * static_cast<uint64_t>(w));
  }
  return s;
}

struct Row {  // one line of the before/after table
  std::string what;
  Size size;
  worker::EvalResult valid, test;
  bool has_valid = false, has_test = false;
  bool has_serving = false;  // --serving-cost
  ServingCost serving;
  double seconds = 0;
};

// One compress job on one worker: the state that moves from stage to stage.
class CompressJob {
 public:
  CompressJob(const LoadedConfig& c, const WorkerRole& role, const std::string& from,
              bool serving_cost)
      : c_(c), role_(role), from_(from), serving_cost_(serving_cost) {}

  Status Run();

 private:
  Status OpenData();
  // Builds the model of `model_config`, declares its tables, and loads
  // `dir` (a saved model or a checkpoint) into them.
  Status LoadSource(const std::string& dir);
  StatusOr<std::unique_ptr<worker::Trainer>> NewTrainer(const worker::TrainerOptions& to,
                                                        worker::DenseOptimizer* opt);
  Status Measure(const std::string& what, double seconds);
  Status RunStage(int i, const AfmPlan& plan);
  // UMEC: the constrained training (resuming from its checkpoint when one
  // exists), then the removal of the chosen fields and neurons.
  Status RunUmec(int i);
  Status FineTune(int i, bool resume);
  Status Barrier(const std::string& what);
  std::string StageDir(int i) const;
  std::string ConfigText() const;
  std::string ScratchDir() const;

  const LoadedConfig& c_;
  WorkerRole role_;
  std::string from_;
  worker::DatasetSchema schema_;
  config::ModelConfig model_config_;  // the current model's structure
  std::unique_ptr<worker::Model> model_;
  std::unique_ptr<worker::BatchSource> train_, stats_, valid_, test_;
  MetricsWriter metrics_;
  std::vector<Row> rows_;
  bool serving_cost_;
};

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
