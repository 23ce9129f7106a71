#include <algorithm>
#include <map>
#include <vector>

#include "common/parallel.h"
#include "ps/client.h"
#include "ps/entry_select.h"
#include "ps/table_rewrite.h"

namespace ctrps::ps {
namespace {

class LocalClient final : public EmbeddingClient {
 public:
  LocalClient(storage::EmbeddingStore* store, uint32_t num_virtual_shards)
      : store_(store), num_virtual_shards_(num_virtual_shards) {}

  Status DeclareTables(const std::vector<TableConfig>& tables) override {
    for (const TableConfig& tc : tables) {
      ASSIGN_OR_RETURN(auto opt, NewSparseOptimizer(tc.optimizer));
      RETURN_IF_ERROR_CTX(store_->CreateTable(TableSpecOf(tc, *opt)), "declaring table " + std::to_string(tc.table_id));
      tables_[tc.table_id] = Table{tc, std::move(opt)};
    }
    return Status::OK();
  }

  Status Pull(const std::vector<TableSlice>& slices, bool training) override {
    return ForEachSlice(slices, [&](const TableSlice& s, const Table& t) {
      return store_->Lookup(s.table, s.keys, s.n, s.data, t.config.dim, training);
    });
  }

  Status Push(const std::vector<TableSlice>& slices, uint32_t step) override {
    return ForEachSlice(slices, [&](const TableSlice& s, const Table& t) {
      const int dim = t.config.dim;
      const SparseOptimizer* opt = t.optimizer.get();
      const float* grads = s.data;
      return store_->Modify(s.table, s.keys, s.n, step, [&](size_t i, float* row) {
        opt->Apply(row, grads + i * dim, dim);
      });
    });
  }

  Status RewriteTable(const TableConfig& nc, const RowBasisChange* change,
                      const std::string& scratch_dir) override {
    ASSIGN_OR_RETURN(const Table* t, Get(nc.table_id));
    ASSIGN_OR_RETURN(auto opt, NewSparseOptimizer(nc.optimizer));
    if (change) {
      RETURN_IF_ERROR(change->Validate(t->config.dim, nc.dim));
      RETURN_IF_ERROR(store_->RewriteTable(
          TableSpecOf(nc, *opt),
          [&](Key, const float* old_row, float* new_row) { change->Apply(old_row, new_row); },
          scratch_dir));
    }
    tables_[nc.table_id] = Table{nc, std::move(opt)};
    return Status::OK();
  }

  StatusOr<std::vector<uint64_t>> EntryHistogram(const EntrySet& set, int level,
                                                 uint32_t prefix) override {
    std::vector<uint64_t> hist(kHistogramBuckets, 0);
    for (size_t i = 0; i < set.tables.size(); ++i) {
      ASSIGN_OR_RETURN(const Table* t, Get(set.tables[i]));
      const int width = t->config.dim, skip = set.skip[i];
      RETURN_IF_ERROR(store_->Scan(set.tables[i], [&](Key, const float* row, const storage::RowStats&) {
        AddRowToHistogram(row, skip, width, level, prefix, hist.data());
        return true;
      }));
    }
    return hist;
  }

  StatusOr<uint64_t> PruneEntries(const EntrySet& set, uint32_t max_bits, bool reset_state,
                                  const std::string& scratch_dir) override {
    uint64_t zeroed = 0;
    for (size_t i = 0; i < set.tables.size(); ++i) {
      ASSIGN_OR_RETURN(const Table* t, Get(set.tables[i]));
      const int width = t->config.dim, skip = set.skip[i];
      const int row_floats = width + t->optimizer->SlotFloats(width);
      const SparseOptimizer* opt = reset_state ? t->optimizer.get() : nullptr;
      RETURN_IF_ERROR(store_->UpdateRows(set.tables[i], [&](Key, const float* row, float* out) {
        std::copy_n(row, row_floats, out);
        const int z = PruneRow(out, skip, width, max_bits, opt);
        zeroed += z;
        return z > 0 || (opt != nullptr && !std::equal(row, row + row_floats, out));
      }, scratch_dir).status());
    }
    return zeroed;
  }

  Status ScanRows(int table, const RowVisitor& fn) override {
    RETURN_IF_ERROR(Get(table).status());
    return store_->Scan(table, [&](Key k, const float* row, const storage::RowStats&) {
      return fn(k, row);
    });
  }

  Status DropTables(const std::vector<int>& tables, bool send) override {
    for (int t : tables) RETURN_IF_ERROR(Get(t).status());
    if (!send) return Status::OK();  // one store: the sender dropped them for all
    for (int t : tables) {
      RETURN_IF_ERROR_CTX(store_->DropTable(t), "dropping table " + std::to_string(t));
      tables_.erase(t);
    }
    return Status::OK();
  }

  Status LoadRows(int table, const Key* keys, size_t n, const float* rows) override {
    ASSIGN_OR_RETURN(const Table* t, Get(table));
    storage::TableSpec spec;
    for (const auto& s : store_->Tables())
      if (s.table_id == table) spec = s;
    const int dim = t->config.dim, rf = spec.row_floats();
    std::vector<float> full(n * rf);
    for (size_t i = 0; i < n; ++i) {
      float* r = full.data() + i * rf;
      storage::InitRow(spec.init, keys[i], spec.dim, spec.slot_floats, r);
      std::copy_n(rows + i * dim, dim, r);
    }
    return store_->Put(table, keys, n, full.data(), nullptr);
  }

  StatusOr<std::vector<storage::ShardFileInfo>> SaveShards(const std::string& dir, uint32_t step,
                                                           uint32_t since_step) override {
    std::vector<uint32_t> all(num_virtual_shards_);
    for (uint32_t v = 0; v < num_virtual_shards_; ++v) all[v] = v;
    RETURN_IF_ERROR(store_->Flush());
    return storage::WriteStoreShards(*store_, dir, num_virtual_shards_, all, step, since_step,
                                     IoThreads());
  }

  Status LoadShards(const std::vector<std::string>& dirs) override {
    // Rows already in the store (a disk store reopened after a crash holds
    // rows newer than the checkpoint) are dropped first.
    for (const storage::TableSpec& spec : store_->Tables()) {
      RETURN_IF_ERROR(store_->DropTable(spec.table_id));
      RETURN_IF_ERROR(store_->CreateTable(spec));
    }
    // Shards of one checkpoint hold disjoint keys: they load in parallel
    // (the store locks per table); the chain's checkpoints load in order.
    for (const std::string& dir : dirs)
      RETURN_IF_ERROR(ParallelFor(static_cast<int>(num_virtual_shards_), IoThreads(), [&](int v) {
        return storage::LoadShardFile(dir + "/" + storage::ShardFileName(v), v,
                                      num_virtual_shards_, store_, /*verified=*/true);
      }));
    return Status::OK();
  }

  uint32_t NumVirtualShards() const override { return num_virtual_shards_; }

  StatusOr<std::vector<storage::TableStats>> TableStats() override {
    std::vector<storage::TableStats> out;
    for (const auto& [id, table] : tables_) {  // a std::map: table id order
      ASSIGN_OR_RETURN(storage::TableStats st, store_->Stats(id));
      out.push_back(st);
    }
    return out;
  }

  int Width(int table) const override {
    auto it = tables_.find(table);
    return it == tables_.end() ? 0 : it->second.config.dim;
  }

 private:
  struct Table {
    TableConfig config;
    std::unique_ptr<SparseOptimizer> optimizer;
  };
  // Runs fn on every slice, tables in parallel on the OpenMP threads (each
  // table is locked on its own; a row's arithmetic does not depend on the
  // thread, so results are identical to a serial run). The first error in
  // slice order is returned.
  template <typename Fn>
  Status ForEachSlice(const std::vector<TableSlice>& slices, Fn&& fn) {
    const int n = static_cast<int>(slices.size());
    for (const TableSlice& s : slices) RETURN_IF_ERROR(Get(s.table).status());
    std::vector<Status> status(n);
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int i = 0; i < n; ++i) status[i] = fn(slices[i], tables_.at(slices[i].table));
    for (const Status& s : status) RETURN_IF_ERROR(s);
    return Status::OK();
  }

  StatusOr<const Table*> Get(int table) const {
    auto it = tables_.find(table);
    if (it == tables_.end())
      return Status::NotFound("table " + std::to_string(table) + " was not declared");
    return &it->second;
  }

  storage::EmbeddingStore* store_;
  uint32_t num_virtual_shards_;
  std::map<int, Table> tables_;
};

}  // namespace

std::unique_ptr<EmbeddingClient> NewLocalClient(storage::EmbeddingStore* store,
                                                uint32_t num_virtual_shards) {
  return std::make_unique<LocalClient>(store, num_virtual_shards);
}

}  // namespace ctrps::ps
