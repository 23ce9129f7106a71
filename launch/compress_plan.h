// The plan of `ctrps compress` (launch/cmd_compress.cc) and what it reads
// from the source model and the job: the source's model section, the job
// with that model, the stages' AFM plans checked against the model each
// stage meets, each phase's job settings, and a model's size. Internal to
// the compress command (compress_job.cc, compress_stages.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "compression/afm.h"
#include "launch/config_loader.h"
#include "ps/client.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"

namespace ctrps::launch::compress {

// The model section of a saved model or checkpoint.
StatusOr<config::ModelConfig> SourceModelConfig(const std::string& from);
// The job `c` with the model section `model` (`name`: where errors point).
StatusOr<LoadedConfig> JobWithModel(const LoadedConfig& c, const config::ModelConfig& model,
                                    const std::string& name);
// The options of the model `model` describes, in the job `c` (the
// structure comes from the source model, the rest from the job).
StatusOr<worker::ModelOptions> OptionsWithModel(const LoadedConfig& c,
                                                const config::ModelConfig& model,
                                                const std::string& name);
// The fields the model `model` reads, in the job `c`.
StatusOr<worker::DatasetSchema> SchemaWithModel(const LoadedConfig& c,
                                                const config::ModelConfig& model,
                                                const std::string& name);
// A stage's AFM plan (fields by name or index in `schema`).
StatusOr<compression::AfmPlan> MakePlan(const config::CompressionStage& st,
                                        const worker::DatasetSchema& schema,
                                        const std::string& where);
// The stage's name, or "<method>-<i>".
std::string StageName(const config::CompressionStage& st, int i);
bool IsDeepLight(const config::CompressionStage& st);
// UMEC or one of its baselines: the same stage, another selector.
bool IsUmec(const config::CompressionStage& st);
// The job's settings of one phase of a stage (its constrained training or
// its fine-tuning): `ft` applied to the training section, checkpoints in
// checkpoint.dir/stage-NN<suffix>.
config::JobConfig PhaseJob(config::JobConfig job, const config::ModelConfig& model,
                           const config::FineTune& ft, int stage, const std::string& suffix);
// Every plan checked against the model it will meet (earlier stages'
// layers and fields marked as compressed), before any work.
StatusOr<std::vector<compression::AfmPlan>> PlanAll(const LoadedConfig& c,
                                                    const worker::DatasetSchema& schema,
                                                    worker::ModelOptions model);

struct Size {
  uint64_t params = 0, bytes = 0, rows = 0;
};
// Parameters and bytes (fp32, as a saved model or bundle holds them: rows
// with their keys) of the model and its tables.
StatusOr<Size> ModelSize(worker::Model* model, ps::EmbeddingClient* client);

}  // namespace ctrps::launch::compress
