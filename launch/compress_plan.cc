// ctrps compress's plan: see compress_plan.h.
#include "launch/compress_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "compression/umec.h"
#include "launch/job_setup.h"
#include "worker/train/checkpoint.h"
#include "worker/train/model_io.h"

namespace ctrps::launch::compress {

namespace fs = std::filesystem;
using compression::AfmPlan;
using compression::RankSetting;

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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace ctrps::launch::compress
