// The in-memory EmbeddingStore: per table, a FlatKeyMap from key to a dense
// row index into one contiguous slab of floats.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "storage/embedding_store.h"
#include "common/flat_key_map.h"

namespace ctrps::storage {
namespace {

struct MemTable {
  TableSpec spec;
  FlatKeyMap map;
  std::vector<float> slab;     // rows * row_floats
  std::vector<RowStats> stats; // rows
  std::vector<Key> keys;       // rows, for Scan in insertion order
  uint64_t lookups = 0, created = 0;
  std::mutex mu;

  // Returns the row index of key, creating the row if missing.
  uint32_t Row(Key key) {
    bool inserted;
    uint32_t idx = map.FindOrInsert(key, &inserted);
    if (inserted) {
      const int rf = spec.row_floats();
      slab.resize(slab.size() + rf);
      InitRow(spec.init, key, spec.dim, spec.slot_floats, slab.data() + size_t{idx} * rf);
      stats.emplace_back();
      keys.push_back(key);
      ++created;
    }
    return idx;
  }
};

class MemoryStore final : public EmbeddingStore {
 public:
  Status CreateTable(const TableSpec& spec) override {
    RETURN_IF_ERROR(spec.Validate());
    std::unique_lock lock(tables_mu_);
    auto it = tables_.find(spec.table_id);
    if (it != tables_.end()) {
      const TableSpec& old = it->second->spec;
      if (old.dim != spec.dim || old.slot_floats != spec.slot_floats)
        return Status::FailedPrecondition("table " + std::to_string(spec.table_id) +
                                          " exists with dim " + std::to_string(old.dim) +
                                          "+" + std::to_string(old.slot_floats) +
                                          " slots, asked for " + std::to_string(spec.dim) +
                                          "+" + std::to_string(spec.slot_floats));
      return Status::OK();
    }
    auto t = std::make_unique<MemTable>();
    t->spec = spec;
    tables_.emplace(spec.table_id, std::move(t));
    return Status::OK();
  }

  std::vector<TableSpec> Tables() const override {
    std::shared_lock lock(tables_mu_);
    std::vector<TableSpec> out;
    for (const auto& [id, t] : tables_) out.push_back(t->spec);
    return out;
  }

  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats,
                bool create_missing) override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    const int rf = t->spec.row_floats();
    if (out_floats < 0 || out_floats > rf)
      return Status::InvalidArgument("lookup of " + std::to_string(out_floats) +
                                     " floats from table " + std::to_string(table) +
                                     " whose rows have " + std::to_string(rf));
    std::lock_guard lock(t->mu);
    // Two passes: resolve every key (creating rows may grow the slab), then
    // copy with the rows a few keys ahead prefetched, so the cache misses of
    // a random gather overlap.
    thread_local std::vector<uint32_t> idxs;
    idxs.resize(n);
    for (size_t i = 0; i < n; ++i) idxs[i] = create_missing ? t->Row(keys[i]) : t->map.Find(keys[i]);
    const float* slab = t->slab.data();
    constexpr size_t kAhead = 8;
    std::vector<float> fresh;
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n && idxs[i + kAhead] != FlatKeyMap::kEmpty)
        __builtin_prefetch(slab + size_t{idxs[i + kAhead]} * rf);
      float* dst = out + i * out_floats;
      uint32_t idx = idxs[i];
      if (idx != FlatKeyMap::kEmpty) {
        std::copy_n(slab + size_t{idx} * rf, out_floats, dst);
      } else {
        fresh.resize(rf);
        InitRow(t->spec.init, keys[i], t->spec.dim, t->spec.slot_floats, fresh.data());
        std::copy_n(fresh.data(), out_floats, dst);
      }
    }
    t->lookups += n;
    return Status::OK();
  }

  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    for (size_t i = 0; i < n; ++i) {
      uint32_t idx = t->Row(keys[i]);
      fn(i, t->slab.data() + size_t{idx} * rf);
      RowStats& s = t->stats[idx];
      ++s.count;
      s.last_step = step;
    }
    return Status::OK();
  }

  Status Scan(int table, const ScanFn& fn) const override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    for (size_t i = 0; i < t->keys.size(); ++i)
      if (!fn(t->keys[i], t->slab.data() + i * rf, t->stats[i])) break;
    return Status::OK();
  }

  Status Put(int table, const Key* keys, size_t n, const float* rows,
             const RowStats* stats) override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    for (size_t i = 0; i < n; ++i) {
      uint32_t idx = t->Row(keys[i]);
      std::copy_n(rows + i * rf, rf, t->slab.data() + size_t{idx} * rf);
      t->stats[idx] = stats ? stats[i] : RowStats{};
    }
    return Status::OK();
  }

  Status Contains(int table, const Key* keys, size_t n, uint8_t* present) override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    std::lock_guard lock(t->mu);
    for (size_t i = 0; i < n; ++i) present[i] = t->map.Find(keys[i]) != FlatKeyMap::kEmpty;
    return Status::OK();
  }

  // Compacts the slab without the erased rows and rebuilds the index
  // (O(rows): meant for Evict's occasional bulk erase, not the hot path).
  Status Erase(int table, const Key* keys, size_t n) override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    const size_t rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    std::vector<uint8_t> gone(t->keys.size(), 0);
    size_t hits = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t idx = t->map.Find(keys[i]);
      if (idx != FlatKeyMap::kEmpty && !gone[idx]) gone[idx] = 1, ++hits;
    }
    if (hits == 0) return Status::OK();
    size_t w = 0;
    t->map.Clear();
    for (size_t r = 0; r < t->keys.size(); ++r) {
      if (gone[r]) continue;
      if (w != r) {
        std::copy_n(t->slab.data() + r * rf, rf, t->slab.data() + w * rf);
        t->stats[w] = t->stats[r];
        t->keys[w] = t->keys[r];
      }
      bool inserted;
      t->map.FindOrInsert(t->keys[w], &inserted);
      ++w;
    }
    t->keys.resize(w);
    t->stats.resize(w);
    t->slab.resize(w * rf);
    return Status::OK();
  }

  Status DropTable(int table) override {
    std::unique_lock lock(tables_mu_);
    if (tables_.erase(table) == 0)
      return Status::NotFound("drop of unknown table " + std::to_string(table));
    return Status::OK();
  }

  Status Flush() override { return Status::OK(); }

  StatusOr<TableStats> Stats(int table) const override {
    ASSIGN_OR_RETURN(MemTable* t, Get(table));
    std::lock_guard lock(t->mu);
    TableStats s;
    s.table_id = table;
    s.rows = t->keys.size();
    s.bytes = t->slab.capacity() * sizeof(float) + t->stats.capacity() * sizeof(RowStats) +
              t->keys.capacity() * sizeof(Key) + t->map.size() * 2 * 16;
    s.lookups = t->lookups;
    s.created = t->created;
    return s;
  }

 private:
  StatusOr<MemTable*> Get(int table) const {
    std::shared_lock lock(tables_mu_);
    auto it = tables_.find(table);
    if (it == tables_.end())
      return Status::NotFound("table " + std::to_string(table) + " was never created");
    return it->second.get();
  }

  mutable std::shared_mutex tables_mu_;
  std::map<int, std::unique_ptr<MemTable>> tables_;
};

}  // namespace

std::unique_ptr<EmbeddingStore> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace ctrps::storage
