#include "launch/job_setup.h"

#include <algorithm>

namespace ctrps::launch {

void SetCompressedStructure(const worker::ModelOptions& o, const worker::DatasetSchema& schema,
                            config::ModelConfig* m) {
  m->clear_low_rank();
  m->clear_compressed_fields();
  for (const worker::LowRankLayer& r : o.low_rank) {
    auto* l = m->add_low_rank();
    l->set_layer(r.layer);
    l->set_rank(r.rank);
    l->set_relu(r.relu);
  }
  for (size_t f = 0; f < o.emb_decode_dims.size(); ++f)
    if (o.emb_decode_dims[f] > 0) {
      auto* cf = m->add_compressed_fields();
      cf->set_field(f < schema.field_names.size() ? schema.field_names[f] : std::to_string(f));
      cf->set_stored_dim(o.emb_dims[f]);
    }
}

compression::DeepLightOptions MakeDeepLightOptions(const config::DeepLightConfig& d) {
  compression::DeepLightOptions o;
  o.mlp_sparsity = d.mlp_sparsity();
  o.pair_ratio = d.pair_ratio();
  o.embedding_ratio = d.embedding_ratio();
  o.every_steps = d.every_steps();
  o.damping_steps = d.damping_steps();
  o.persistent_masks = d.persistent_masks();
  o.start_step = d.warmup_steps();
  return o;
}

compression::UmecOptions MakeUmecOptions(const config::UmecConfig& u, double dense_lr,
                                         config::CompressionStage::Method method) {
  compression::UmecOptions o;
  switch (method) {
    case config::CompressionStage::MAGNITUDE_PRUNING: o.selector = compression::UmecSelector::kMagnitude; break;
    case config::CompressionStage::UNIFORM_THINNING: o.selector = compression::UmecSelector::kUniform; break;
    case config::CompressionStage::GROUP_LASSO: o.selector = compression::UmecSelector::kGroupLasso; break;
    default: o.selector = compression::UmecSelector::kPrimalDual; break;
  }
  o.budget = u.budget();
  o.input_only = u.input_only();
  o.fields_to_drop = u.fields_to_drop();
  o.lr_s = u.lr_s();
  o.lr_y = u.lr_y();
  o.lr_z = u.lr_z();
  o.lr = u.lr() > 0 ? u.lr() : dense_lr;
  o.start_step = u.warmup_steps();
  o.log_every_steps = u.log_every_steps();
  o.group_lasso = u.group_lasso();
  return o;
}

UmecRemoval RecordUmecRemoval(const compression::UmecSurgery& cut, const worker::ModelOptions& old,
                              const worker::DatasetSchema& schema, config::ModelConfig* m) {
  UmecRemoval r;
  for (int f : cut.dropped_fields) {
    r.tables.push_back(old.TableOf(f));
    r.fields += (r.fields.empty() ? "" : " ") + schema.field_names[f];
    m->add_dropped_fields(schema.field_names[f]);
  }
  m->clear_mlp_dims();
  for (int d : cut.options.mlp_dims) m->add_mlp_dims(d);
  for (size_t l = 0; l < cut.neurons_kept.size(); ++l)
    r.mlp += (l ? "-" : "") + std::to_string(cut.neurons_kept[l]);
  return r;
}

StatusOr<worker::ModelOptions> MakeModelOptions(const LoadedConfig& c,
                                                const worker::DatasetSchema& schema) {
  const config::ModelConfig& m = c.job.model();
  worker::ModelOptions o;
  switch (m.type()) {
    case config::ModelConfig::LR: o.type = worker::ModelType::kLR; break;
    case config::ModelConfig::FM: o.type = worker::ModelType::kFM; break;
    case config::ModelConfig::FWFM: o.type = worker::ModelType::kFwFM; break;
    case config::ModelConfig::DEEPFM: o.type = worker::ModelType::kDeepFM; break;
    case config::ModelConfig::DEEPFWFM: o.type = worker::ModelType::kDeepFwFM; break;
    case config::ModelConfig::DCN_V2: o.type = worker::ModelType::kDCNv2; break;
    case config::ModelConfig::DLRM: o.type = worker::ModelType::kDLRM; break;
  }
  o.num_fields = schema.num_fields();
  o.field_tables = schema.table_ids;
  // LR has only the per-feature linear weight: no embedding.
  const bool has_embeddings = o.type != worker::ModelType::kLR;
  o.emb_dims.assign(o.num_fields, has_embeddings ? m.embedding_dim() : 0);
  // A field name, or its index.
  auto field_index = [&](const std::string& name, const std::string& where) -> StatusOr<int> {
    auto it = std::find(schema.field_names.begin(), schema.field_names.end(), name);
    int idx = -1;
    if (it != schema.field_names.end()) {
      idx = static_cast<int>(it - schema.field_names.begin());
    } else if (!name.empty() && name.size() < 9 && std::all_of(name.begin(), name.end(), ::isdigit)) {
      idx = std::stoi(name);  // the data's field index
      if (!schema.table_ids.empty()) {
        auto t = std::find(schema.table_ids.begin(), schema.table_ids.end(), idx);
        idx = t == schema.table_ids.end() ? -1 : static_cast<int>(t - schema.table_ids.begin());
      }
    }
    if (idx < 0 || idx >= o.num_fields) {
      std::string names;
      for (const auto& n : schema.field_names) names += (names.empty() ? "" : " ") + n;
      return Status::InvalidArgument(c.Where(where) + ": unknown field '" + name +
                                     "'; the fields are: " + names);
    }
    return idx;
  };
  for (const auto& fd : m.field_dims()) {
    ASSIGN_OR_RETURN(int idx, field_index(fd.field(), "model.field_dims"));
    if (has_embeddings) o.emb_dims[idx] = fd.dim();
  }
  for (const auto& cf : m.compressed_fields()) {
    ASSIGN_OR_RETURN(int idx, field_index(cf.field(), "model.compressed_fields"));
    if (!has_embeddings)
      return Status::InvalidArgument(c.Where("model.compressed_fields") +
                                     ": the model has no embeddings");
    if (o.emb_decode_dims.empty()) o.emb_decode_dims.assign(o.num_fields, 0);
    o.emb_decode_dims[idx] = o.emb_dims[idx];
    o.emb_dims[idx] = cf.stored_dim();
  }
  for (const auto& lr : m.low_rank()) o.low_rank.push_back({lr.layer(), lr.rank(), lr.relu()});
  if (m.mlp_dims_size() > 0) o.mlp_dims.assign(m.mlp_dims().begin(), m.mlp_dims().end());
  o.dropout = m.dropout();
  o.cross_layers = m.cross_layers();
  o.cross_rank = m.cross_rank();
  o.dlrm_interaction_cat = m.dlrm_interaction() == config::ModelConfig::CAT;
  o.num_dense_fields = m.num_dense_fields();
  if (o.type == worker::ModelType::kDLRM && o.num_dense_fields == 0 &&
      c.job.data().format() == config::DataConfig::CRITEO)
    o.num_dense_fields = 13;
  if (m.bottom_mlp_dims_size() > 0)
    o.bottom_mlp_dims.assign(m.bottom_mlp_dims().begin(), m.bottom_mlp_dims().end());
  else
    o.bottom_mlp_dims = {64, m.embedding_dim()};
  o.seed = m.seed();
  Status s = o.Validate();
  if (!s.ok()) return s.WithContext(c.Where("model"));
  return o;
}

ps::SparseOptimizerOptions MakeSparseOptimizerOptions(const config::OptimizerConfig& o) {
  ps::SparseOptimizerOptions s;
  switch (o.type()) {
    case config::OptimizerConfig::ADAM: s.type = ps::SparseOptimizerType::kAdam; break;
    case config::OptimizerConfig::ADAGRAD: s.type = ps::SparseOptimizerType::kAdagrad; break;
    case config::OptimizerConfig::SGD: s.type = ps::SparseOptimizerType::kSGD; break;
    case config::OptimizerConfig::FTRL: s.type = ps::SparseOptimizerType::kFTRL; break;
  }
  s.learning_rate = o.learning_rate();
  s.l2 = o.l2();
  s.adagrad_initial_acc = o.adagrad_initial_acc();
  s.adam_beta1 = o.adam_beta1();
  s.adam_beta2 = o.adam_beta2();
  s.adam_eps = o.adam_eps();
  s.ftrl_alpha = o.ftrl_alpha();
  s.ftrl_beta = o.ftrl_beta();
  s.ftrl_l1 = o.ftrl_l1();
  s.ftrl_l2 = o.ftrl_l2();
  return s;
}

StatusOr<worker::TrainerOptions> MakeTrainerOptions(const LoadedConfig& c) {
  const config::TrainConfig& t = c.job.train();
  worker::TrainerOptions o;
  o.epochs = t.epochs();
  o.eval_every_steps = t.eval_every_steps();
  o.early_stopping_patience = t.early_stopping_patience();
  o.early_stopping_min_delta = t.early_stopping_min_delta();
  o.max_steps = t.max_steps();
  o.max_eval_rows = c.job.data().max_eval_rows();
  o.log_interval_s = t.log_interval_s();
  o.embedding_init_scale = c.job.model().embedding_init_scale();
  o.embedding_seed = c.job.model().seed();
  o.sparse_optimizer = MakeSparseOptimizerOptions(t.sparse_optimizer());
  const config::CheckpointConfig& k = c.job.checkpoint();
  o.checkpoint.dir = k.dir();
  o.checkpoint.every_steps = k.every_steps();
  o.checkpoint.every_seconds = k.every_minutes() * 60.0;
  o.checkpoint.at_end = k.at_end();
  o.checkpoint.keep_last = k.keep_last();
  o.checkpoint.full_every = k.full_every();
  o.checkpoint.config_text = ConfigToText(c.job);
  // Early stopping's snapshot of the best model: checkpoint.dir/best, or
  // for this run only (removed at its end) beside its output.
  if (k.dir().empty()) o.best_model_dir = c.job.output().dir() + "/best.tmp";
  Status s = o.Validate();
  if (!s.ok()) return s.WithContext(c.Where("train"));
  return o;
}

storage::StoreOptions MakeStoreOptions(const config::StorageConfig& s) {
  storage::StoreOptions o;
  switch (s.kind()) {
    case config::StorageConfig::MEMORY: o.kind = storage::StoreOptions::Kind::kMemory; break;
    case config::StorageConfig::ROCKSDB: o.kind = storage::StoreOptions::Kind::kRocksDb; break;
    case config::StorageConfig::TIERED: o.kind = storage::StoreOptions::Kind::kTiered; break;
  }
  o.dram_budget_bytes = static_cast<size_t>(s.dram_budget_bytes());
  o.rocksdb.dir = s.path();
  o.rocksdb.virtual_shards = static_cast<uint32_t>(s.virtual_shards());
  o.rocksdb.block_cache_bytes = static_cast<size_t>(s.block_cache_bytes());
  o.rocksdb.memtable_bytes = static_cast<size_t>(s.memtable_bytes());
  o.rocksdb.bloom_bits_per_key = s.bloom_bits_per_key();
  o.rocksdb.block_size_bytes = static_cast<size_t>(s.block_size_bytes());
  if (s.kind() == config::StorageConfig::TIERED) {
    // One memory figure: dram_budget_bytes is the store's whole DRAM, so
    // RocksDB's block cache and memtables come out of it (an eighth each)
    // unless set explicitly; the DRAM tier gets the rest. With the RocksDB
    // defaults (256 + 64 MiB) a 16 MiB budget once peaked at 418 MiB RSS.
    const size_t budget = o.dram_budget_bytes;
    if (!s.has_block_cache_bytes())
      o.rocksdb.block_cache_bytes = std::max<size_t>(size_t{1} << 20, budget / 8);
    if (!s.has_memtable_bytes())
      o.rocksdb.memtable_bytes = std::max<size_t>(size_t{1} << 20, budget / 8);
    const size_t rocks = o.rocksdb.block_cache_bytes + o.rocksdb.memtable_bytes;
    if (!s.has_block_cache_bytes() || !s.has_memtable_bytes())
      o.dram_budget_bytes = std::max<size_t>(size_t{64} << 10, budget > rocks ? budget - rocks : 0);
  }
  o.rocksdb.background_jobs = s.background_jobs();
  o.rocksdb.read_threads = s.read_threads();
  storage::TablePolicy& p = o.policy.defaults;
  p.admission.min_seen = static_cast<uint32_t>(s.admit_min_seen());
  p.admission.probability = s.admit_probability();
  p.admission.counter_bytes = static_cast<size_t>(s.admit_counter_bytes());
  p.eviction.max_unseen_steps = static_cast<uint32_t>(s.evict_unseen_steps());
  p.eviction.min_count = static_cast<uint32_t>(s.evict_min_count());
  p.eviction.every_steps = static_cast<uint32_t>(s.evict_every_steps());
  return o;
}

StatusOr<std::unique_ptr<storage::EmbeddingStore>> MakeEmbeddingStore(const LoadedConfig& c) {
  storage::StoreOptions o = MakeStoreOptions(c.job.storage());
  o.policy.defaults.admission.seed = c.job.train().seed();
  // Policy state per virtual shard, as on parameter servers (admission.h).
  o.policy.num_virtual_shards = static_cast<uint32_t>(c.job.storage().virtual_shards());
  auto store = storage::OpenStore(o);
  if (!store.ok()) return store.status().WithContext(c.Where("storage"));
  return store;
}

StatusOr<std::unique_ptr<storage::EmbeddingStore>> MakeShardStore(const LoadedConfig& c, uint32_t v,
                                                                  uint32_t num_virtual_shards,
                                                                  uint32_t shards_here) {
  storage::StoreOptions o = MakeStoreOptions(c.job.storage());
  o.policy.defaults.admission.seed = c.job.train().seed();
  const size_t k = std::max<uint32_t>(1, shards_here);
  o.dram_budget_bytes = std::max<size_t>(size_t{64} << 10, o.dram_budget_bytes / k);
  o.rocksdb.block_cache_bytes = std::max<size_t>(size_t{1} << 20, o.rocksdb.block_cache_bytes / k);
  o.rocksdb.memtable_bytes = std::max<size_t>(size_t{1} << 20, o.rocksdb.memtable_bytes / k);
  // The store keeps the policy state of its one shard; the sketch budget
  // is split over all virtual shards, so a shard's sketch has the same size
  // (and the job admits the same keys) whatever the layout (admission.h).
  o.policy.num_virtual_shards = num_virtual_shards;
  o.policy.shards = {v};
  o.rocksdb.virtual_shards = num_virtual_shards;
  o.rocksdb.shards = {v};
  o.rocksdb.read_threads = 1;  // one shard per store: nothing to read in parallel
  auto store = storage::OpenStore(o);
  if (!store.ok())
    return store.status().WithContext(c.Where("storage") + " (virtual shard " + std::to_string(v) + ")");
  return store;
}

}  // namespace ctrps::launch
