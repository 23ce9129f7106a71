// Range and consistency checks of a loaded JobConfig.
#include <cmath>
#include <sstream>

#include "launch/config_loader.h"

namespace ctrps::launch {
namespace {

class Checker {
 public:
  explicit Checker(const LoadedConfig& c) : c_(c) {}

  template <typename T>
  void Range(const std::string& field, T value, double lo, double hi) {
    if (!status_.ok()) return;
    double v = static_cast<double>(value);
    if (!(v >= lo && v <= hi) || std::isnan(v)) {
      std::ostringstream m;
      m << c_.Where(field) << ": value " << value << " out of range [" << lo << ", " << hi << "]";
      status_ = Status::InvalidArgument(m.str());
    }
  }
  void Require(bool ok, const std::string& field, const std::string& what) {
    if (status_.ok() && !ok) status_ = Status::InvalidArgument(c_.Where(field) + ": " + what);
  }
  const Status& status() const { return status_; }

 private:
  const LoadedConfig& c_;
  Status status_;
};

void CheckOptimizer(Checker& k, const std::string& p, const config::OptimizerConfig& o, bool sparse) {
  k.Range(p + ".learning_rate", o.learning_rate(), 1e-12, 10);
  k.Range(p + ".l2", o.l2(), 0, 1);
  k.Range(p + ".adam_beta1", o.adam_beta1(), 0, 0.999999);
  k.Range(p + ".adam_beta2", o.adam_beta2(), 0, 0.99999999);
  k.Range(p + ".adam_eps", o.adam_eps(), 1e-20, 1);
  k.Range(p + ".adagrad_initial_acc", o.adagrad_initial_acc(), 0, 1e6);
  k.Range(p + ".ftrl_alpha", o.ftrl_alpha(), 1e-12, 100);
  k.Range(p + ".ftrl_beta", o.ftrl_beta(), 0, 1e6);
  k.Range(p + ".ftrl_l1", o.ftrl_l1(), 0, 1e6);
  k.Range(p + ".ftrl_l2", o.ftrl_l2(), 0, 1e6);
  k.Require(sparse || o.type() != config::OptimizerConfig::FTRL, p + ".type",
            "FTRL is a sparse (embedding) optimizer; use ADAM, ADAGRAD or SGD for dense weights");
}

void CheckCheckpoint(Checker& k, const config::CheckpointConfig& c,
                     const config::StorageConfig& s) {
  k.Range("checkpoint.every_steps", c.every_steps(), 0, 1e15);
  k.Range("checkpoint.every_minutes", c.every_minutes(), 0, 1e7);
  k.Range("checkpoint.keep_last", c.keep_last(), 1, 1000);
  k.Range("checkpoint.full_every", c.full_every(), 1, 1000);
  k.Require(c.full_every() == 1 || (s.evict_unseen_steps() == 0 && s.evict_min_count() == 0),
            "checkpoint.full_every",
            "incremental checkpoints (full_every > 1) cannot record rows removed by eviction; "
            "set full_every to 1 or turn storage.evict_unseen_steps/evict_min_count off");
}

void CheckStorage(Checker& k, const config::StorageConfig& s) {
  const bool disk = s.kind() != config::StorageConfig::MEMORY;
  k.Require(!disk || !s.path().empty(), "storage.path",
            "missing required value: the store directory (storage.kind is ROCKSDB or TIERED)");
  k.Range("storage.dram_budget_bytes", s.dram_budget_bytes(), 64 << 10, 1099511627776.0);
  k.Range("storage.virtual_shards", s.virtual_shards(), 1, 65536);
  k.Range("storage.block_cache_bytes", s.block_cache_bytes(), 1 << 20, 1099511627776.0);
  k.Range("storage.memtable_bytes", s.memtable_bytes(), 1 << 20, 68719476736.0);
  k.Range("storage.bloom_bits_per_key", s.bloom_bits_per_key(), 0, 64);
  k.Range("storage.block_size_bytes", s.block_size_bytes(), 512, 4 << 20);
  k.Range("storage.background_jobs", s.background_jobs(), 1, 64);
  k.Range("storage.read_threads", s.read_threads(), 1, 64);
  k.Range("storage.admit_min_seen", s.admit_min_seen(), 0, 255);
  k.Range("storage.admit_probability", s.admit_probability(), 1e-9, 1);
  k.Require(s.admit_min_seen() <= 1 || s.admit_probability() >= 1, "storage.admit_probability",
            "set admit_min_seen or admit_probability, not both");
  k.Range("storage.admit_counter_bytes", s.admit_counter_bytes(), 1024, 17179869184.0);
  k.Range("storage.evict_unseen_steps", s.evict_unseen_steps(), 0, 2147483647.0);
  k.Range("storage.evict_min_count", s.evict_min_count(), 0, 2147483647.0);
  k.Range("storage.evict_every_steps", s.evict_every_steps(), 0, 2147483647.0);
  k.Require(s.evict_every_steps() == 0 || s.evict_unseen_steps() > 0 || s.evict_min_count() > 0,
            "storage.evict_every_steps", "set evict_unseen_steps or evict_min_count to evict");
}

}  // namespace

Status ValidateConfig(const LoadedConfig& c, const std::string& command) {
  Checker k(c);
  const auto& d = c.job.data();
  const auto& m = c.job.model();
  const auto& t = c.job.train();
  if (command == "compress") {
    k.Require(!d.train().empty(), "data.train",
              "missing required value: the training data (statistics pass and fine-tuning)");
    const auto& cc = c.job.compression();
    k.Require(cc.stages_size() > 0, "compression.stages", "the plan has no stage");
    for (int i = 0; i < cc.stages_size(); ++i) {
      const std::string p = "compression.stages[" + std::to_string(i) + "]";
      const auto& st = cc.stages(i);
      const bool umec = st.method() == config::CompressionStage::UMEC ||
                        st.method() == config::CompressionStage::MAGNITUDE_PRUNING ||
                        st.method() == config::CompressionStage::UNIFORM_THINNING ||
                        st.method() == config::CompressionStage::GROUP_LASSO;
      k.Require(st.has_afm() || st.method() == config::CompressionStage::DEEPLIGHT || umec,
                p + ".afm", "missing: the layers and fields to compress");
      k.Require(!umec || st.has_umec(), p + ".umec", "missing: the budget (or fields_to_drop)");
      if (umec) {
        const auto& u = st.umec();
        k.Range(p + ".umec.train.epochs", u.train().epochs(), 0, 1000);
        k.Range(p + ".umec.train.max_steps", u.train().max_steps(), 0, 1e15);
        k.Range(p + ".umec.log_every_steps", u.log_every_steps(), 0, 1e15);
      }
      k.Range(p + ".fine_tune.epochs", st.fine_tune().epochs(), 0, 1000);
      k.Range(p + ".fine_tune.max_steps", st.fine_tune().max_steps(), 0, 1e15);
      k.Range(p + ".fine_tune.early_stopping_patience", st.fine_tune().early_stopping_patience(), 0, 1e6);
      k.Range(p + ".fine_tune.eval_every_steps", st.fine_tune().eval_every_steps(), 0, 1e15);
      k.Range(p + ".fine_tune.dense_learning_rate", st.fine_tune().dense_learning_rate(), 0, 10);
      k.Range(p + ".fine_tune.sparse_learning_rate", st.fine_tune().sparse_learning_rate(), 0, 10);
      k.Range(p + ".afm.max_rows", st.afm().max_rows(), 0, 1e15);
    }
  }
  if (command == "train") {
    k.Require(!d.train().empty(), "data.train", "missing required value: the training data path");
    const auto& s = c.job.storage();
    k.Require(s.evict_every_steps() > 0 || (s.evict_unseen_steps() == 0 && s.evict_min_count() == 0),
              "storage.evict_every_steps",
              "eviction (evict_unseen_steps/evict_min_count) is set but would never run in "
              "training: set evict_every_steps (checkpoints do not evict)");
  }
  k.Require(d.format() != config::DataConfig::LIBFFM || d.has_libffm_num_fields(),
            "data.libffm_num_fields", "missing required value for LIBFFM data");
  if (d.format() == config::DataConfig::LIBFFM)
    k.Range("data.libffm_num_fields", d.libffm_num_fields(), 1, 255);
  k.Range("data.max_line_bytes", d.max_line_bytes(), 64, 1 << 30);
  k.Range("data.shuffle_buffer", d.shuffle_buffer(), 0, 1 << 26);
  k.Range("data.log_bad_lines", d.log_bad_lines(), 0, 1e6);
  k.Range("data.prefetch_batches", d.prefetch_batches(), 1, 1024);
  k.Range("data.max_eval_rows", d.max_eval_rows(), 0, 1e15);

  k.Range("model.embedding_dim", m.embedding_dim(), 1, 1024);
  for (int i = 0; i < m.field_dims_size(); ++i) {
    k.Require(!m.field_dims(i).field().empty(), "model.field_dims", "field_dims entry " +
              std::to_string(i) + " has no field name");
    k.Range("model.field_dims", m.field_dims(i).dim(), 1, 1024);
  }
  for (int i = 0; i < m.compressed_fields_size(); ++i)
    k.Range("model.compressed_fields", m.compressed_fields(i).stored_dim(), 1, 1024);
  for (int i = 0; i < m.low_rank_size(); ++i)
    k.Range("model.low_rank", m.low_rank(i).rank(), 1, 65536);
  for (int v : m.mlp_dims()) k.Range("model.mlp_dims", v, 1, 65536);
  for (int v : m.bottom_mlp_dims()) k.Range("model.bottom_mlp_dims", v, 1, 65536);
  k.Range("model.dropout", m.dropout(), 0, 0.9);
  k.Range("model.cross_layers", m.cross_layers(), 1, 16);
  k.Range("model.cross_rank", m.cross_rank(), 0, 4096);
  k.Range("model.num_dense_fields", m.num_dense_fields(), 0, 255);
  k.Range("model.embedding_init_scale", m.embedding_init_scale(), 0, 10);

  k.Range("train.epochs", t.epochs(), 1, 1000);
  k.Range("train.batch_size", t.batch_size(), 1, 1 << 20);
  k.Range("train.eval_every_steps", t.eval_every_steps(), 0, 1e15);
  k.Range("train.early_stopping_patience", t.early_stopping_patience(), 0, 1e6);
  k.Range("train.early_stopping_min_delta", t.early_stopping_min_delta(), 0, 1);
  k.Range("train.threads", t.threads(), 1, 256);
  k.Range("train.max_steps", t.max_steps(), 0, 1e15);
  k.Range("train.log_interval_s", t.log_interval_s(), 0.01, 86400);
  k.Range("train.deeplight.warmup_steps", t.deeplight().warmup_steps(), 0, 1e15);
  k.Range("train.umec.warmup_steps", t.umec().warmup_steps(), 0, 1e15);
  k.Range("train.umec.log_every_steps", t.umec().log_every_steps(), 0, 1e15);
  CheckOptimizer(k, "train.dense_optimizer", t.dense_optimizer(), false);
  CheckOptimizer(k, "train.sparse_optimizer", t.sparse_optimizer(), true);

  CheckStorage(k, c.job.storage());
  CheckCheckpoint(k, c.job.checkpoint(), c.job.storage());

  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= c.job.output().log_level() == l;
  k.Require(level_ok, "output.log_level",
            "'" + c.job.output().log_level() + "' is not one of trace, debug, info, warn, error");
  k.Require(!c.job.output().dir().empty(), "output.dir", "must not be empty");
  return k.status();
}

}  // namespace ctrps::launch
