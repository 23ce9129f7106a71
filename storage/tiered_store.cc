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
//
// The tier's slots and eviction: tiered_tier.{h,cc}; ScanShards (the
// checkpoint writers' scan): tiered_scan.cc.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "storage/rocksdb_store.h"
#include "storage/store_factory.h"
#include "storage/tiered_tier.h"

namespace ctrps::storage {
namespace {

using namespace tiered;  // NOLINT: the tier's types and operations

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
    RETURN_IF_ERROR(CheckLookupWidth(table, out_floats, static_cast<int>(t->rf)));
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
      RETURN_IF_ERROR(WriteBackAll(t, disk_.get()));
    }
    return disk_->Scan(table, fn);
  }

  // The default (a filtered Scan) would write back every dirty row of the
  // table and read every disk shard; this reads only the wanted shards and
  // takes dirty rows from DRAM. Another sharding falls back to the default,
  // which does write the dirty rows back (through Scan).
  Status ScanShards(int table, uint32_t num_virtual_shards, const std::vector<uint8_t>& wanted,
                    const ScanFn& fn) const override {
    if (num_virtual_shards != disk_->virtual_shards() || wanted.size() != num_virtual_shards)
      return EmbeddingStore::ScanShards(table, num_virtual_shards, wanted, fn);
    ASSIGN_OR_RETURN(Tier* t, Get(table));
    return ScanTierShards(t, *disk_, wanted, fn);
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
        RETURN_IF_ERROR_CTX(WriteBackAll(t.get(), disk_.get()),
                            "flushing table " + std::to_string(id));
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
      RETURN_IF_ERROR_CTX(WriteBackAll(t.get(), disk_.get()),
                          "snapshot of table " + std::to_string(id));
    }
    return disk_->Snapshot(dir);
  }

 private:
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
      RETURN_IF_ERROR(WriteBackAll(t.get(), disk_.get()));
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
