// Loading a trained model for export and evaluation: a model saved by
// `ctrps train` (worker/train/model_io.h) or a training checkpoint, with the
// config stored beside it.
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

// What `ctrps export --checkpoint DIR` and `ctrps eval --model DIR` read:
// a model dir saved by `ctrps train` (worker/train/model_io.h, recognised by
// its MANIFEST) or a training checkpoint (worker/train/checkpoint.h, by its
// MANIFEST.pb; verified, its chain of increments applied, any number of
// workers and servers). Anything else is NotFound, saying what DIR lacks.
StatusOr<SavedModel> LoadExportSource(const LoadedConfig& c, const std::string& dir);

}  // namespace ctrps::launch
