// The in-memory EmbeddingStore: per table, a FlatKeyMap from key to a dense
// row index into one contiguous slab of floats.
#include <algorithm>
#include <atomic>
#include <cstring>
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
  uint32_t Row(Key key) { return Row(key, FlatKeyMap::Hash(key)); }
  uint32_t Row(Key key, uint64_t hash) {
    bool inserted;
    uint32_t idx = map.FindOrInsertHashed(key, hash, &inserted);
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

  // idxs[i] = the row index of keys[i] (created if missing and `create`;
  // else kEmpty when absent). Hashes the batch first and probes with each
  // key's slot prefetched a few keys ahead, so the cache misses of a large
  // table overlap instead of being paid one by one.
  void Resolve(const Key* keys, size_t n, bool create, std::vector<uint32_t>* idxs) {
    thread_local std::vector<uint64_t> hashes;
    hashes.resize(n);
    idxs->resize(n);
    for (size_t i = 0; i < n; ++i) hashes[i] = FlatKeyMap::Hash(keys[i]);
    const uint64_t* h = hashes.data();
    constexpr size_t kAhead = 16;
    for (size_t i = 0; i < std::min(n, kAhead); ++i) map.Prefetch(h[i]);
    uint32_t* out = idxs->data();
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) map.Prefetch(h[i + kAhead]);
      uint32_t idx = map.FindHashed(keys[i], h[i]);  // most keys exist: no insert path
      if (idx == FlatKeyMap::kEmpty && create) idx = Row(keys[i], h[i]);
      out[i] = idx;
    }
  }
};

// Prefetches the cache lines of `floats` floats at p.
inline void PrefetchFloats(const float* p, size_t floats) {
  const char* c = reinterpret_cast<const char*>(p);
  const char* end = c + floats * sizeof(float);
  for (; c < end; c += 64) __builtin_prefetch(c);
  __builtin_prefetch(end - 1);
}

// Copies n floats; the row widths of real tables get fixed-size copies
// (a few vector moves instead of a memmove call per row).
inline void CopyFloats(float* dst, const float* src, int n) {
  switch (n) {
    case 8: std::memcpy(dst, src, 8 * sizeof(float)); return;
    case 16: std::memcpy(dst, src, 16 * sizeof(float)); return;
    case 32: std::memcpy(dst, src, 32 * sizeof(float)); return;
    case 64: std::memcpy(dst, src, 64 * sizeof(float)); return;
    default: std::memcpy(dst, src, size_t(n) * sizeof(float));
  }
}

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
    RETURN_IF_ERROR(CheckLookupWidth(table, out_floats, rf));
    std::lock_guard lock(t->mu);
    // Two passes: resolve every key (creating rows may grow the slab), then
    // copy with the rows a few keys ahead prefetched, so the cache misses of
    // a random gather overlap.
    thread_local std::vector<uint32_t> idxs;
    t->Resolve(keys, n, create_missing, &idxs);
    const float* slab = t->slab.data();
    constexpr size_t kAhead = 8;
    std::vector<float> fresh;
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n && idxs[i + kAhead] != FlatKeyMap::kEmpty)
        PrefetchFloats(slab + size_t{idxs[i + kAhead]} * rf, out_floats);
      float* dst = out + i * out_floats;
      uint32_t idx = idxs[i];
      if (idx != FlatKeyMap::kEmpty) {
        CopyFloats(dst, slab + size_t{idx} * rf, out_floats);
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
    // As Lookup: create every missing row first (in key order, as one pass
    // would), then update the rows with the next ones prefetched. Keys are
    // unique, so the order of creation and update does not matter otherwise.
    thread_local std::vector<uint32_t> idxs;
    t->Resolve(keys, n, /*create=*/true, &idxs);
    float* slab = t->slab.data();
    RowStats* stats = t->stats.data();
    constexpr size_t kAhead = 4;
    for (size_t i = 0; i < std::min(n, kAhead); ++i) PrefetchFloats(slab + size_t{idxs[i]} * rf, rf);
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) {
        PrefetchFloats(slab + size_t{idxs[i + kAhead]} * rf, rf);
        __builtin_prefetch(stats + idxs[i + kAhead]);
      }
      const uint32_t idx = idxs[i];
      fn(i, slab + size_t{idx} * rf);
      RowStats& s = stats[idx];
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
