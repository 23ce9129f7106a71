#include "launch/saved_model.h"

#include <filesystem>

#include "launch/job_setup.h"
#include "worker/train/model_io.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

namespace {

// The model `c` describes with its tables declared on an empty in-memory
// store (routed by num_virtual_shards), ready for weights to be loaded.
StatusOr<SavedModel> EmptyModel(const LoadedConfig& c, uint32_t num_virtual_shards) {
  SavedModel s;
  ASSIGN_OR_RETURN(worker::DatasetSchema schema, SchemaFor(c));
  ASSIGN_OR_RETURN(worker::ModelOptions mo, MakeModelOptions(c, schema));
  ASSIGN_OR_RETURN(s.model, worker::NewModel(mo));
  ASSIGN_OR_RETURN(worker::TrainerOptions to, MakeTrainerOptions(c));
  s.store = storage::NewMemoryStore();
  s.client = ps::NewLocalClient(s.store.get(), num_virtual_shards);
  // The trainer declares the tables exactly as training did.
  worker::Trainer trainer(to, s.model.get(), nullptr, s.client.get(), nullptr);
  RETURN_IF_ERROR(trainer.DeclareTables());
  ASSIGN_OR_RETURN(s.data.parser, MakeJobParserOptions(c));
  s.data.field_names = schema.field_names;
  s.init_rows.policy = worker::serve::UnknownKeyRows::Policy::kKeySeededInit;
  s.init_rows.init_seed = to.embedding_seed;
  s.init_rows.init_scale = to.embedding_init_scale;
  return s;
}

}  // namespace

StatusOr<SavedModel> LoadSavedModel(const LoadedConfig& c, const std::string& dir) {
  ASSIGN_OR_RETURN(SavedModel s,
                   EmptyModel(c, static_cast<uint32_t>(c.job.storage().virtual_shards())));
  RETURN_IF_ERROR_CTX(worker::LoadModel(dir, s.model.get(), s.client.get()),
                      "loading model " + dir);
  return s;
}

StatusOr<SavedModel> LoadExportSource(const LoadedConfig& c, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(fs::path(dir) / "MANIFEST", ec)) return LoadSavedModel(c, dir);
  if (!fs::is_regular_file(fs::path(dir) / worker::kCheckpointManifestName, ec))
    return Status::NotFound(dir + " is neither a model saved by `ctrps train` (MANIFEST) nor a "
                                  "checkpoint (" + worker::kCheckpointManifestName + ")");
  // A checkpoint written by any number of workers and servers: the rows of
  // every virtual shard (its chain of increments applied) in one local store.
  ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, worker::ReadCheckpointManifest(dir));
  ASSIGN_OR_RETURN(SavedModel s, EmptyModel(c, m.virtual_shards()));
  RETURN_IF_ERROR_CTX(worker::LoadCheckpointWeights(dir, s.model.get(), s.client.get()),
                      "loading checkpoint " + dir);
  return s;
}

}  // namespace ctrps::launch
