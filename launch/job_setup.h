// Maps the loaded config into each module's Options and builds the pieces
// of a job (schema, data streams, model, optimizers). The config is read
// here and nowhere else.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "compression/deeplight.h"
#include "compression/umec.h"
#include "launch/config_loader.h"
#include "ps/sparse_optimizer.h"
#include "storage/embedding_store.h"
#include "storage/store_factory.h"
#include "worker/data/batch.h"
#include "worker/data/line_parser.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/model.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

// The parser and feature-hashing settings of the configured data format.
worker::ParserOptions MakeParserOptions(const config::DataConfig& d);

// The parser settings of a job: the data format's, reading only the fields
// the model keeps (model.dropped_fields).
StatusOr<worker::ParserOptions> MakeJobParserOptions(const LoadedConfig& c);

// The fields of the configured data format that the model reads (their
// table ids when fields were dropped).
StatusOr<worker::DatasetSchema> SchemaFor(const LoadedConfig& c);

// A batch stream over `path` (file, list or glob). `training`: shuffled,
// with the training batch size; otherwise in file order.
StatusOr<std::unique_ptr<worker::BatchSource>> OpenBatchSource(const LoadedConfig& c,
                                                               const std::string& path,
                                                               bool training);

StatusOr<worker::ModelOptions> MakeModelOptions(const LoadedConfig& c,
                                                const worker::DatasetSchema& schema);
// Writes the compressed structure of `o` (low-rank layers, compressed
// fields) into `m`, replacing any there: the config saved with a model
// that `ctrps compress` made.
void SetCompressedStructure(const worker::ModelOptions& o, const worker::DatasetSchema& schema,
                            config::ModelConfig* m);
// DeepLight's options from its config section (start_step = warmup_steps).
compression::DeepLightOptions MakeDeepLightOptions(const config::DeepLightConfig& d);
// UMEC's options from its config section; lr 0 takes the dense optimizer's
// learning rate `dense_lr`.
// method: UMEC or one of its baselines (the selector).
compression::UmecOptions MakeUmecOptions(
    const config::UmecConfig& u, double dense_lr,
    config::CompressionStage::Method method = config::CompressionStage::UMEC);
// UMEC's removal in a job's terms, recorded in the model section `m`
// (model.dropped_fields, model.mlp_dims): the dropped fields' table ids,
// their names ("I6 C8") and the kept MLP widths ("181-400-248"). `old`
// and `schema`: the model and fields before the removal.
struct UmecRemoval {
  std::vector<int> tables;
  std::string fields, mlp;
};
UmecRemoval RecordUmecRemoval(const compression::UmecSurgery& cut, const worker::ModelOptions& old,
                              const worker::DatasetSchema& schema, config::ModelConfig* m);
StatusOr<worker::TrainerOptions> MakeTrainerOptions(const LoadedConfig& c);
StatusOr<std::unique_ptr<worker::DenseOptimizer>> MakeDenseOptimizer(const LoadedConfig& c,
                                                                      size_t dense_size);
ps::SparseOptimizerOptions MakeSparseOptimizerOptions(const config::OptimizerConfig& o);

// The store options of the `storage` section (kind, RocksDB settings,
// admission and eviction for every table).
storage::StoreOptions MakeStoreOptions(const config::StorageConfig& s);
// Opens the configured embedding store: in memory by default, RocksDB or
// tiered (DRAM over RocksDB) on request.
StatusOr<std::unique_ptr<storage::EmbeddingStore>> MakeEmbeddingStore(const LoadedConfig& c);
// The store of virtual shard `v` of `num_virtual_shards` on a parameter
// server that holds `shards_here` shards: the configured kind and settings,
// restricted to shard v (RocksDB in storage.path/shard-NNNN, so the stores
// of all servers share one directory layout and never collide), with the
// DRAM budget, block cache and memtable memory split evenly over the
// server's shards (the configured sizes are per process).
StatusOr<std::unique_ptr<storage::EmbeddingStore>> MakeShardStore(const LoadedConfig& c, uint32_t v,
                                                                  uint32_t num_virtual_shards,
                                                                  uint32_t shards_here);

}  // namespace ctrps::launch
