// Maps the loaded config into each module's Options and builds the pieces
// of a job (schema, data streams, model, optimizers). The config is read
// here and nowhere else.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "launch/config_loader.h"
#include "ps/sparse_optimizer.h"
#include "worker/data/batch.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/model.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

// The fields of the configured data format.
StatusOr<worker::DatasetSchema> SchemaFor(const LoadedConfig& c);

// A batch stream over `path` (file, list or glob). `training`: shuffled,
// with the training batch size; otherwise in file order.
StatusOr<std::unique_ptr<worker::BatchSource>> OpenBatchSource(const LoadedConfig& c,
                                                               const std::string& path,
                                                               bool training);

StatusOr<worker::ModelOptions> MakeModelOptions(const LoadedConfig& c,
                                                const worker::DatasetSchema& schema);
StatusOr<worker::TrainerOptions> MakeTrainerOptions(const LoadedConfig& c);
StatusOr<std::unique_ptr<worker::DenseOptimizer>> MakeDenseOptimizer(const LoadedConfig& c,
                                                                      size_t dense_size);
ps::SparseOptimizerOptions MakeSparseOptimizerOptions(const config::OptimizerConfig& o);

}  // namespace ctrps::launch
