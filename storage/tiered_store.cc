// The tiered store: per table, a fixed number of DRAM slots (the budget
// split across tables by equal row counts) over the RocksDB store.
//
// Eviction is CLOCK with a 2-bit frequency counter: an access sets the
// counter up by one (saturating at 3); the hand skips a slot while
// decrementing its counter and evicts the first slot at 0. Recency comes
// from the sweep, frequency from the counter, so a row used often survives
// up to 3 sweeps without being touched. Rows of the running batch are
// pinned. Dirty victims are written back in one batched write before their
// slots are reused; all cold misses of a batch are read with one batched
// read (one MultiGet per RocksDB shard touched).
//
// Atomicity: write-backs happen before anything in DRAM changes, so a
// failed write leaves the store as it was. The rare "bypass" path (a batch
// with more distinct missing keys than free slots) writes those rows to disk
// after applying the batch and rolls DRAM back if that write fails.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "storage/rocksdb_store.h"
#include "storage/slot_index.h"
#include "storage/store_factory.h"

namespace ctrps::storage {
namespace {

constexpr uint8_t kDirty = 1;   // DRAM copy differs from disk
constexpr uint8_t kOnDisk = 2;  // the row exists on disk
constexpr uint8_t kMaxFreq = 3;

struct Tier {
  TableSpec spec;
  size_t rf = 0;
  size_t capacity = 0;  // slots
  std::unique_ptr<float[]> slab;  // capacity * rf, touched only as slots fill
  std::vector<Key> keys;          // per used slot
  std::vector<RowStats> stats;
  std::vector<uint8_t> freq, flags;
  std::vector<uint32_t> pin;      // epoch of the batch that pinned the slot
  std::vector<uint32_t> free_slots;
  SlotIndex index;
  size_t hand = 0;
  uint32_t epoch = 0;
  uint64_t dram_only = 0;  // resident rows not yet on disk
  uint64_t lookups = 0, created = 0, hits = 0, misses = 0, evictions = 0, writebacks = 0;
  std::mutex mu;

  float* Row(uint32_t s) { return slab.get() + s * rf; }
  static constexpr Key kFreeKey = ~Key{0};

  void Reset(size_t cap) {
    capacity = cap;
    slab.reset(new float[std::max<size_t>(1, cap * rf)]);
    keys.clear(); stats.clear(); freq.clear(); flags.clear(); pin.clear(); free_slots.clear();
    keys.reserve(cap); stats.reserve(cap); freq.reserve(cap); flags.reserve(cap); pin.reserve(cap);
    index = SlotIndex(cap);
    hand = 0;
    dram_only = 0;
  }
};

size_t SlotBytes(const TableSpec& s) {
  return s.row_floats() * sizeof(float) + sizeof(Key) + sizeof(RowStats) + 2 + sizeof(uint32_t) +
         SlotIndex::kBytesPerSlot;
}

// A planned insertion of one row into the tier.
struct Plan {
  std::vector<uint32_t> slot;     // per row to insert: its slot, or kNone = bypass
  std::vector<uint32_t> victims;  // resident slots to evict
  std::vector<uint32_t> fresh_free;  // free-list slots taken
  size_t new_used = 0;
};

class TieredStore final : public EmbeddingStore {
 public:
  TieredStore(std::unique_ptr<RocksDbStore> disk, size_t budget)
      : disk_(std::move(disk)), budget_(budget) {}

  Status Init() {
    for (const TableSpec& s : disk_->Tables()) AddTier(s);
    return Rebalance();
  }

  Status CreateTable(const TableSpec& spec) override {
    RETURN_IF_ERROR(disk_->CreateTable(spec));
    std::unique_lock lock(mu_);
    if (tiers_.count(spec.table_id)) return Status::OK();
    AddTier(spec);
    return RebalanceLocked();
  }

  std::vector<TableSpec> Tables() const override { return disk_->Tables(); }

  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats,
                bool create_missing) override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    if (out_floats < 0 || static_cast<size_t>(out_floats) > t->rf)
      return Status::InvalidArgument("lookup of " + std::to_string(out_floats) + " floats from table " +
                                     std::to_string(table) + " whose rows have " + std::to_string(t->rf));
    std::lock_guard lock(t->mu);
    ++t->epoch;
    std::vector<uint32_t>& miss = scratch_u32();
    miss.clear();
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = t->index.Find(keys[i]);
      if (s == SlotIndex::kNone) { miss.push_back(static_cast<uint32_t>(i)); continue; }
      std::copy_n(t->Row(s), out_floats, out + i * out_floats);
      if (t->freq[s] < kMaxFreq) ++t->freq[s];
    }
    t->lookups += n;
    t->hits += n - miss.size();
    t->misses += miss.size();
    if (miss.empty()) return Status::OK();
    Cold c;
    RETURN_IF_ERROR(ReadCold(t, keys, miss, &c));
    // Rows found on disk are cached clean; new rows are cached dirty (or
    // written through when no slot is free) only if create_missing.
    std::vector<uint32_t> ins;
    for (uint32_t u = 0; u < c.keys.size(); ++u)
      if (c.found[u] || create_missing) ins.push_back(u);
    Plan p = PlanInsert(t, ins.size());
    std::vector<Key> wk;
    std::vector<float> wr;
    std::vector<RowStats> ws;
    CollectVictims(t, p, &wk, &wr, &ws);
    size_t created = 0;
    for (size_t j = 0; j < ins.size(); ++j) {
      uint32_t u = ins[j];
      if (!c.found[u]) ++created;
      if (p.slot[j] == SlotIndex::kNone && !c.found[u]) {  // bypass: write through
        wk.push_back(c.keys[u]);
        wr.insert(wr.end(), c.rows.begin() + u * t->rf, c.rows.begin() + (u + 1) * t->rf);
        ws.push_back(c.stats[u]);
      }
    }
    if (!wk.empty())
      RETURN_IF_ERROR(disk_->WriteRows(t->spec.table_id, wk.data(), wk.size(), wr.data(), ws.data()));
    t->writebacks += wk.size();
    CommitPlan(t, p);
    for (size_t j = 0; j < ins.size(); ++j) {
      uint32_t u = ins[j];
      if (p.slot[j] != SlotIndex::kNone)
        Install(t, p.slot[j], c.keys[u], c.rows.data() + u * t->rf, c.stats[u],
                c.found[u] ? kOnDisk : kDirty);
    }
    t->created += created;
    for (size_t m = 0; m < miss.size(); ++m)
      std::copy_n(c.rows.data() + size_t{c.slot[m]} * t->rf, out_floats, out + size_t{miss[m]} * out_floats);
    return Status::OK();
  }

  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    std::lock_guard lock(t->mu);
    const uint32_t epoch = ++t->epoch;
    std::vector<uint32_t>& miss = scratch_u32();
    miss.clear();
    std::vector<uint32_t> where(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = t->index.Find(keys[i]);
      where[i] = s;
      if (s == SlotIndex::kNone) { miss.push_back(static_cast<uint32_t>(i)); continue; }
      t->pin[s] = epoch;
      if (t->freq[s] < kMaxFreq) ++t->freq[s];
    }
    t->hits += n - miss.size();
    t->misses += miss.size();
    Cold c;
    if (!miss.empty()) RETURN_IF_ERROR(ReadCold(t, keys, miss, &c));
    Plan p = PlanInsert(t, c.keys.size());
    std::vector<Key> wk;
    std::vector<float> wr;
    std::vector<RowStats> ws;
    CollectVictims(t, p, &wk, &wr, &ws);
    if (!wk.empty())
      RETURN_IF_ERROR(disk_->WriteRows(t->spec.table_id, wk.data(), wk.size(), wr.data(), ws.data()));
    t->writebacks += wk.size();
    CommitPlan(t, p);
    bool bypass = false;
    for (uint32_t u = 0; u < c.keys.size(); ++u) {
      if (p.slot[u] == SlotIndex::kNone) { bypass = true; continue; }
      Install(t, p.slot[u], c.keys[u], c.rows.data() + u * t->rf, c.stats[u], c.found[u] ? kOnDisk : 0);
      t->pin[p.slot[u]] = epoch;
    }
    // Undo copies, only needed when a write follows the update.
    std::vector<float> undo_rows;
    std::vector<RowStats> undo_stats;
    std::vector<uint8_t> undo_flags;
    if (bypass) {
      for (size_t i = 0; i < n; ++i) {
        if (where[i] == SlotIndex::kNone) continue;
        undo_rows.insert(undo_rows.end(), t->Row(where[i]), t->Row(where[i]) + t->rf);
        undo_stats.push_back(t->stats[where[i]]);
        undo_flags.push_back(t->flags[where[i]]);
      }
    }
    size_t created = 0;
    for (size_t m = 0, i = 0; i < n; ++i) {
      float* row;
      RowStats* st;
      if (where[i] != SlotIndex::kNone) {
        row = t->Row(where[i]);
        st = &t->stats[where[i]];
        t->flags[where[i]] |= kDirty;
      } else {
        uint32_t u = c.slot[m++];
        if (p.slot[u] != SlotIndex::kNone) {
          row = t->Row(p.slot[u]);
          st = &t->stats[p.slot[u]];
          t->flags[p.slot[u]] |= kDirty;
        } else {
          row = c.rows.data() + u * t->rf;
          st = &c.stats[u];
        }
      }
      fn(i, row);
      ++st->count;
      st->last_step = step;
    }
    for (uint32_t u = 0; u < c.keys.size(); ++u) created += !c.found[u];
    if (bypass) {
      wk.clear(); wr.clear(); ws.clear();
      for (uint32_t u = 0; u < c.keys.size(); ++u) {
        if (p.slot[u] != SlotIndex::kNone) continue;
        wk.push_back(c.keys[u]);
        wr.insert(wr.end(), c.rows.begin() + u * t->rf, c.rows.begin() + (u + 1) * t->rf);
        ws.push_back(c.stats[u]);
      }
      Status s = disk_->WriteRows(t->spec.table_id, wk.data(), wk.size(), wr.data(), ws.data());
      if (!s.ok()) {
        RollBack(t, where, undo_rows, undo_stats, undo_flags, c, p);
        return s;
      }
      t->writebacks += wk.size();
    }
    t->created += created;
    return Status::OK();
  }

  Status Scan(int table, const ScanFn& fn) const override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    {
      std::lock_guard lock(t->mu);
      RETURN_IF_ERROR(WriteBackAll(t));
    }
    return disk_->Scan(table, fn);
  }

  Status Put(int table, const Key* keys, size_t n, const float* rows, const RowStats* stats) override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    std::lock_guard lock(t->mu);
    // Disk first (atomic); then the resident copies, which cannot fail.
    RETURN_IF_ERROR(disk_->Put(table, keys, n, rows, stats));
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = t->index.Find(keys[i]);
      if (s == SlotIndex::kNone) continue;
      std::copy_n(rows + i * t->rf, t->rf, t->Row(s));
      t->stats[s] = stats ? stats[i] : RowStats{};
      if (!(t->flags[s] & kOnDisk)) --t->dram_only;
      t->flags[s] = kOnDisk;
    }
    return Status::OK();
  }

  Status Contains(int table, const Key* keys, size_t n, uint8_t* present) override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    std::lock_guard lock(t->mu);
    std::vector<Key> cold;
    std::vector<size_t> at;
    for (size_t i = 0; i < n; ++i) {
      present[i] = t->index.Find(keys[i]) != SlotIndex::kNone;
      if (!present[i]) cold.push_back(keys[i]), at.push_back(i);
    }
    if (cold.empty()) return Status::OK();
    std::vector<uint8_t> found(cold.size());
    RETURN_IF_ERROR(disk_->Contains(table, cold.data(), cold.size(), found.data()));
    for (size_t j = 0; j < cold.size(); ++j) present[at[j]] = found[j];
    return Status::OK();
  }

  Status Erase(int table, const Key* keys, size_t n) override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    std::lock_guard lock(t->mu);
    RETURN_IF_ERROR(disk_->Erase(table, keys, n));
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = t->index.Find(keys[i]);
      if (s == SlotIndex::kNone) continue;
      Free(t, s);
    }
    return Status::OK();
  }

  Status DropTable(int table) override {
    RETURN_IF_ERROR(disk_->DropTable(table));
    std::unique_lock lock(mu_);
    tiers_.erase(table);
    return RebalanceLocked();
  }

  Status Flush() override {
    {
      std::shared_lock lock(mu_);
      for (auto& [id, t] : tiers_) {
        std::lock_guard tl(t->mu);
        RETURN_IF_ERROR_CTX(WriteBackAll(t.get()), "flushing table " + std::to_string(id));
      }
    }
    return disk_->Flush();
  }

  StatusOr<TableStats> Stats(int table) const override {
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    ASSIGN_OR_RETURN(TableStats s, disk_->Stats(table));
    std::lock_guard lock(t->mu);
    s.rows += t->dram_only;
    s.lookups = t->lookups;
    s.created = t->created;
    s.dram_rows = t->keys.size() - t->free_slots.size();
    s.dram_hits = t->hits;
    s.dram_misses = t->misses;
    s.evictions = t->evictions;
    s.writebacks = t->writebacks;
    return s;
  }

  Status Snapshot(const std::string& dir) override {
    std::unique_lock lock(mu_);  // no table is created or dropped meanwhile
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& [id, t] : tiers_) {
      locks.emplace_back(t->mu);
      RETURN_IF_ERROR_CTX(WriteBackAll(t.get()), "snapshot of table " + std::to_string(id));
    }
    return disk_->Snapshot(dir);
  }

 private:
  // The distinct cold keys of a batch, read from disk in one batched call
  // (absent rows initialised from their key).
  struct Cold {
    std::vector<Key> keys;
    std::vector<uint32_t> slot;  // per miss (in order): index into keys
    std::vector<float> rows;
    std::vector<RowStats> stats;
    std::vector<uint8_t> found;
  };

  Status ReadCold(Tier* t, const Key* keys, const std::vector<uint32_t>& miss, Cold* c) {
    std::vector<std::pair<Key, uint32_t>> order(miss.size());
    for (size_t m = 0; m < miss.size(); ++m) order[m] = {keys[miss[m]], static_cast<uint32_t>(m)};
    std::sort(order.begin(), order.end());
    c->slot.resize(miss.size());
    for (size_t j = 0; j < order.size(); ++j) {
      if (j == 0 || order[j].first != order[j - 1].first) c->keys.push_back(order[j].first);
      c->slot[order[j].second] = static_cast<uint32_t>(c->keys.size() - 1);
    }
    const size_t u = c->keys.size();
    c->rows.resize(u * t->rf);
    c->stats.assign(u, RowStats{});
    c->found.assign(u, 0);
    RETURN_IF_ERROR(disk_->ReadRows(t->spec.table_id, c->keys.data(), u, c->rows.data(),
                                    c->stats.data(), c->found.data()));
    for (size_t k = 0; k < u; ++k)
      if (!c->found[k])
        InitRow(t->spec.init, c->keys[k], t->spec.dim, t->spec.slot_floats, c->rows.data() + k * t->rf);
    return Status::OK();
  }

  // Chooses a slot for each of `count` rows without changing the tier:
  // free slots, then unused capacity, then CLOCK victims (never pinned).
  Plan PlanInsert(Tier* t, size_t count) {
    Plan p;
    p.slot.assign(count, SlotIndex::kNone);
    p.new_used = t->keys.size();
    size_t free_taken = 0;
    const uint32_t epoch = t->epoch;
    for (size_t j = 0; j < count; ++j) {
      if (free_taken < t->free_slots.size()) {
        p.slot[j] = t->free_slots[t->free_slots.size() - 1 - free_taken++];
        p.fresh_free.push_back(p.slot[j]);
      } else if (p.new_used < t->capacity) {
        p.slot[j] = static_cast<uint32_t>(p.new_used++);
      } else {
        uint32_t v = FindVictim(t, epoch);
        if (v == SlotIndex::kNone) break;  // everything pinned: the rest bypass
        t->pin[v] = epoch;
        p.slot[j] = v;
        p.victims.push_back(v);
      }
    }
    return p;
  }

  uint32_t FindVictim(Tier* t, uint32_t epoch) {
    const size_t used = t->keys.size();
    for (size_t step = 0; step < (kMaxFreq + 2) * used; ++step) {
      if (t->hand >= used) t->hand = 0;
      uint32_t s = static_cast<uint32_t>(t->hand++);
      if (t->flags[s] == 0xff || t->pin[s] == epoch) continue;  // free or pinned
      if (t->freq[s] > 0) { --t->freq[s]; continue; }
      return s;
    }
    return SlotIndex::kNone;
  }

  void CollectVictims(Tier* t, const Plan& p, std::vector<Key>* k, std::vector<float>* r,
                      std::vector<RowStats>* s) {
    for (uint32_t v : p.victims) {
      if (!(t->flags[v] & kDirty) && (t->flags[v] & kOnDisk)) continue;
      k->push_back(t->keys[v]);
      r->insert(r->end(), t->Row(v), t->Row(v) + t->rf);
      s->push_back(t->stats[v]);
    }
  }

  // Applies a plan after its write-backs succeeded: victims leave the tier.
  void CommitPlan(Tier* t, const Plan& p) {
    for (uint32_t v : p.victims) {
      t->index.Erase(t->keys[v]);
      if (!(t->flags[v] & kOnDisk)) --t->dram_only;
      t->flags[v] = 0xff;
      ++t->evictions;
    }
    t->free_slots.resize(t->free_slots.size() - p.fresh_free.size());
    while (t->keys.size() < p.new_used) {
      t->keys.push_back(Tier::kFreeKey);
      t->stats.emplace_back();
      t->freq.push_back(0);
      t->flags.push_back(0xff);
      t->pin.push_back(0);
    }
  }

  void Install(Tier* t, uint32_t s, Key key, const float* row, const RowStats& st, uint8_t flags) {
    std::copy_n(row, t->rf, t->Row(s));
    t->keys[s] = key;
    t->stats[s] = st;
    t->freq[s] = 1;
    t->flags[s] = flags;
    t->pin[s] = t->epoch;
    if (!(flags & kOnDisk)) ++t->dram_only;
    t->index.Insert(key, s);
  }

  void Free(Tier* t, uint32_t s) {
    t->index.Erase(t->keys[s]);
    if (!(t->flags[s] & kOnDisk)) --t->dram_only;
    t->flags[s] = 0xff;
    t->keys[s] = Tier::kFreeKey;
    t->free_slots.push_back(s);
  }

  // Restores a Modify whose bypass write failed.
  void RollBack(Tier* t, const std::vector<uint32_t>& where, const std::vector<float>& undo_rows,
                const std::vector<RowStats>& undo_stats, const std::vector<uint8_t>& undo_flags,
                const Cold& c, const Plan& p) {
    for (size_t i = 0, h = 0; i < where.size(); ++i) {
      if (where[i] == SlotIndex::kNone) continue;
      std::copy_n(undo_rows.data() + h * t->rf, t->rf, t->Row(where[i]));
      t->stats[where[i]] = undo_stats[h];
      t->flags[where[i]] = undo_flags[h];
      ++h;
    }
    for (uint32_t u = 0; u < c.keys.size(); ++u) {
      uint32_t s = p.slot[u];
      if (s == SlotIndex::kNone) continue;
      if (c.found[u]) {  // back to the disk value, clean
        std::copy_n(c.rows.data() + u * t->rf, t->rf, t->Row(s));
        t->stats[s] = c.stats[u];
        t->flags[s] = kOnDisk;
      } else {
        Free(t, s);
      }
    }
  }

  Status WriteBackAll(Tier* t) const {
    std::vector<Key> k;
    std::vector<float> r;
    std::vector<RowStats> s;
    std::vector<uint32_t> slots;
    auto write = [&]() -> Status {
      if (k.empty()) return Status::OK();
      RETURN_IF_ERROR(disk_->WriteRows(t->spec.table_id, k.data(), k.size(), r.data(), s.data()));
      for (uint32_t x : slots) {
        if (!(t->flags[x] & kOnDisk)) --t->dram_only;
        t->flags[x] = kOnDisk;
      }
      t->writebacks += k.size();
      k.clear(); r.clear(); s.clear(); slots.clear();
      return Status::OK();
    };
    for (uint32_t x = 0; x < t->keys.size(); ++x) {
      if (t->flags[x] == 0xff || (t->flags[x] == kOnDisk)) continue;
      k.push_back(t->keys[x]);
      r.insert(r.end(), t->Row(x), t->Row(x) + t->rf);
      s.push_back(t->stats[x]);
      slots.push_back(x);
      if (k.size() == 65536) RETURN_IF_ERROR(write());
    }
    return write();
  }

  void AddTier(const TableSpec& spec) {
    auto t = std::make_unique<Tier>();
    t->spec = spec;
    t->rf = spec.row_floats();
    tiers_.emplace(spec.table_id, std::move(t));
  }

  Status Rebalance() {
    std::unique_lock lock(mu_);
    return RebalanceLocked();
  }

  // Equal row counts per table: slots = budget / sum of per-slot bytes. A
  // table whose share changes is written back and emptied.
  Status RebalanceLocked() {
    size_t per_row = 0;
    for (auto& [id, t] : tiers_) per_row += SlotBytes(t->spec);
    size_t cap = per_row ? budget_ / per_row : 0;
    for (auto& [id, t] : tiers_) {
      std::lock_guard tl(t->mu);
      if (t->capacity == cap) continue;
      RETURN_IF_ERROR(WriteBackAll(t.get()));
      t->Reset(cap);
    }
    return Status::OK();
  }

  StatusOr<Tier*> Get(int table) const {
    std::shared_lock lock(mu_);
    auto it = tiers_.find(table);
    if (it == tiers_.end()) return Status::NotFound("table " + std::to_string(table) + " was never created");
    return it->second.get();
  }

  static std::vector<uint32_t>& scratch_u32() { thread_local std::vector<uint32_t> v; return v; }

  std::unique_ptr<RocksDbStore> disk_;
  size_t budget_;
  mutable std::shared_mutex mu_;
  std::map<int, std::unique_ptr<Tier>> tiers_;
};

}  // namespace

StatusOr<std::unique_ptr<EmbeddingStore>> OpenTieredStore(const TieredOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  ASSIGN_OR_RETURN(auto disk, RocksDbStore::Open(opt.disk));
  auto store = std::make_unique<TieredStore>(std::move(disk), opt.dram_budget_bytes);
  RETURN_IF_ERROR_CTX(store->Init(), "opening tiered store " + opt.disk.dir);
  return std::unique_ptr<EmbeddingStore>(std::move(store));
}

}  // namespace ctrps::storage
