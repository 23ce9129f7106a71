#include <algorithm>
#include <map>
#include <vector>

#include "ps/client.h"

namespace ctrps::ps {
namespace {

class LocalClient final : public EmbeddingClient {
 public:
  explicit LocalClient(storage::EmbeddingStore* store) : store_(store) {}

  Status DeclareTables(const std::vector<TableConfig>& tables) override {
    for (const TableConfig& tc : tables) {
      ASSIGN_OR_RETURN(auto opt, NewSparseOptimizer(tc.optimizer));
      storage::TableSpec spec;
      spec.table_id = tc.table_id;
      spec.dim = tc.dim;
      spec.slot_floats = opt->SlotFloats(tc.dim);
      spec.init.seed = tc.init_seed;
      spec.init.scale = tc.init_scale;
      spec.init.zero_prefix = tc.zero_prefix;
      opt->ConfigureInit(&spec.init);
      RETURN_IF_ERROR_CTX(store_->CreateTable(spec), "declaring table " + std::to_string(tc.table_id));
      tables_[tc.table_id] = Table{tc, std::move(opt)};
    }
    return Status::OK();
  }

  Status Pull(const std::vector<TableSlice>& slices, bool training) override {
    for (const TableSlice& s : slices) {
      ASSIGN_OR_RETURN(const Table* t, Get(s.table));
      RETURN_IF_ERROR(store_->Lookup(s.table, s.keys, s.n, s.data, t->config.dim, training));
    }
    return Status::OK();
  }

  Status Push(const std::vector<TableSlice>& slices, uint32_t step) override {
    for (const TableSlice& s : slices) {
      ASSIGN_OR_RETURN(const Table* t, Get(s.table));
      const int dim = t->config.dim;
      const SparseOptimizer* opt = t->optimizer.get();
      const float* grads = s.data;
      RETURN_IF_ERROR(store_->Modify(s.table, s.keys, s.n, step, [&](size_t i, float* row) {
        opt->Apply(row, grads + i * dim, dim);
      }));
    }
    return Status::OK();
  }

  Status ScanRows(int table, const RowVisitor& fn) override {
    RETURN_IF_ERROR(Get(table).status());
    return store_->Scan(table, [&](Key k, const float* row, const storage::RowStats&) {
      return fn(k, row);
    });
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

  int Width(int table) const override {
    auto it = tables_.find(table);
    return it == tables_.end() ? 0 : it->second.config.dim;
  }

 private:
  struct Table {
    TableConfig config;
    std::unique_ptr<SparseOptimizer> optimizer;
  };
  StatusOr<const Table*> Get(int table) const {
    auto it = tables_.find(table);
    if (it == tables_.end())
      return Status::NotFound("table " + std::to_string(table) + " was not declared");
    return &it->second;
  }

  storage::EmbeddingStore* store_;
  std::map<int, Table> tables_;
};

}  // namespace

std::unique_ptr<EmbeddingClient> NewLocalClient(storage::EmbeddingStore* store) {
  return std::make_unique<LocalClient>(store);
}

}  // namespace ctrps::ps
