// Loading a model saved by `ctrps train` (worker/train/model_io.h) with the
// config stored beside it: the input of `ctrps export` (and, later, of the
// checkpoint loader, which provides the same model + row source).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "launch/config_loader.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"

namespace ctrps::launch {

struct SavedModel {
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;  // serves the model's rows; ScanRows walks them
  std::unique_ptr<worker::Model> model;
  worker::serve::DataSpec data;  // how raw lines become keys
  // The trainer's rule for rows of new keys (seed, scale): what evaluation
  // of this model reads for keys it never trained.
  worker::serve::UnknownKeyRows init_rows;
};

// Builds the model `c` describes and loads dir's weights and rows into it.
StatusOr<SavedModel> LoadSavedModel(const LoadedConfig& c, const std::string& dir);

// What `ctrps export --checkpoint DIR` reads: today a model dir saved by
// `ctrps train` (worker/train/model_io.h, recognised by its MANIFEST).
//
// Hook for checkpoints (issue 5, items 1-2): when DIR is a checkpoint,
// return the same SavedModel built from it: the model with the checkpoint's
// dense weights, and a client whose ScanRows walks the checkpoint's shard
// snapshots (any server count). Everything downstream (bundle, ONNX) only
// uses SavedModel, so nothing else changes. Until then a non-model dir is
// refused with a message saying so.
StatusOr<SavedModel> LoadExportSource(const LoadedConfig& c, const std::string& dir);

}  // namespace ctrps::launch
