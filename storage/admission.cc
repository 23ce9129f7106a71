// The admission/eviction wrapper (see admission.h).
#include "storage/admission.h"
#include "storage/admission_state.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "common/keys.h"

namespace ctrps::storage {
namespace {

using namespace policy_state;

struct PolicyTable {
  int id = 0;
  TablePolicy policy;
  bool warned_changed = false;  // logged that the restored sketch did not fit (under mu)
  std::mutex mu;  // guards the shards' state
  std::vector<std::unique_ptr<ShardPolicy>> shard;  // by virtual shard; null if not held
};

class PolicyStore final : public EmbeddingStore {
 public:
  PolicyStore(std::unique_ptr<EmbeddingStore> inner, const PolicyOptions& opt)
      : inner_(std::move(inner)), opt_(opt), num_shards_(std::max<uint32_t>(1, opt.num_virtual_shards)) {
    held_.assign(num_shards_, opt_.shards.empty() ? 1 : 0);
    for (uint32_t v : opt_.shards)
      if (v < num_shards_) held_[v] = 1;
    for (const TableSpec& s : inner_->Tables()) AddTable(s.table_id);
  }

  Status CreateTable(const TableSpec& spec) override {
    RETURN_IF_ERROR(inner_->CreateTable(spec));
    std::unique_lock lock(mu_);
    if (!tables_.count(spec.table_id)) AddTable(spec.table_id);
    return Status::OK();
  }
  std::vector<TableSpec> Tables() const override { return inner_->Tables(); }

  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats,
                bool create_missing) override {
    PolicyTable* t = Find(table);
    if (!t || !create_missing || !t->policy.admission.enabled())
      return inner_->Lookup(table, keys, n, out, out_floats, create_missing);
    ASSIGN_OR_RETURN(std::vector<uint32_t> sid, ShardsOf(table, keys, n));
    std::vector<uint8_t> ok(n);
    size_t admitted = 0;
    {
      std::lock_guard lock(t->mu);
      // A call counts once for each shard it touches, as it would for a
      // store holding only that shard.
      const std::vector<uint8_t> touched = Touched(sid);
      for (uint32_t v = 0; v < num_shards_; ++v)
        if (touched[v]) ++t->shard[v]->calls;
      for (size_t i = 0; i < n; ++i) {
        ShardPolicy& sp = *t->shard[sid[i]];
        ok[i] = Sight(t->policy.admission, &sp, keys[i]);
        admitted += ok[i];
        sp.rejected_lookups += !ok[i];
      }
    }
    if (admitted == n) return inner_->Lookup(table, keys, n, out, out_floats, true);
    // Admitted keys may create rows; the rest are read without creating
    // (a stored row is returned as is, a missing one as its initial value).
    std::vector<Key> k[2];
    std::vector<size_t> at[2];
    for (size_t i = 0; i < n; ++i) k[ok[i]].push_back(keys[i]), at[ok[i]].push_back(i);
    std::vector<float> buf;
    for (int a = 0; a < 2; ++a) {
      if (k[a].empty()) continue;
      buf.resize(k[a].size() * out_floats);
      RETURN_IF_ERROR(inner_->Lookup(table, k[a].data(), k[a].size(), buf.data(), out_floats, a == 1));
      for (size_t j = 0; j < k[a].size(); ++j)
        std::copy_n(buf.data() + j * out_floats, out_floats, out + at[a][j] * out_floats);
    }
    return Status::OK();
  }

  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    PolicyTable* t = Find(table);
    if (!t) return inner_->Modify(table, keys, n, step, fn);
    ASSIGN_OR_RETURN(std::vector<uint32_t> sid, ShardsOf(table, keys, n));
    std::vector<uint8_t> evict(num_shards_, 0);
    bool evict_any = false;
    std::vector<uint8_t> ok;
    size_t admitted = n;
    const EvictionOptions& e = t->policy.eviction;
    const uint32_t every = e.enabled() ? e.every_steps : 0;
    {
      std::lock_guard lock(t->mu);
      const std::vector<uint8_t> touched = Touched(sid);
      for (uint32_t v = 0; v < num_shards_; ++v) {
        if (!touched[v]) continue;
        ShardPolicy& sp = *t->shard[v];
        sp.last_step = std::max(sp.last_step, step);
        if (every > 0 && step / every > sp.last_evict_step / every) {
          evict[v] = 1;
          evict_any = true;
          sp.last_evict_step = step;
        }
      }
      if (t->policy.admission.enabled()) {
        ok.resize(n);
        admitted = 0;
        for (size_t i = 0; i < n; ++i) admitted += ok[i] = IsAdmitted(t->policy.admission, *t->shard[sid[i]], keys[i]);
      }
    }
    if (evict_any) {
      EvictPolicy p = PolicyOf(e, step / every * every);
      RETURN_IF_ERROR_CTX(EvictShards(t, table, evict, p).status(), "scheduled eviction");
    }
    if (admitted == n) return inner_->Modify(table, keys, n, step, fn);
    // Not-admitted keys that have a row anyway (created before admission
    // was turned on) are updated; the others' updates are dropped.
    std::vector<Key> rest;
    std::vector<size_t> rest_at;
    for (size_t i = 0; i < n; ++i)
      if (!ok[i]) rest.push_back(keys[i]), rest_at.push_back(i);
    std::vector<uint8_t> present(rest.size());
    RETURN_IF_ERROR(inner_->Contains(table, rest.data(), rest.size(), present.data()));
    for (size_t j = 0; j < rest.size(); ++j) ok[rest_at[j]] = present[j];
    std::vector<Key> k;
    std::vector<size_t> at;
    {
      std::lock_guard lock(t->mu);
      for (size_t i = 0; i < n; ++i) {
        if (ok[i]) k.push_back(keys[i]), at.push_back(i);
        else ++t->shard[sid[i]]->dropped_updates;
      }
    }
    if (k.empty()) return Status::OK();
    return inner_->Modify(table, k.data(), k.size(), step,
                          [&](size_t j, float* row) { fn(at[j], row); });
  }

  Status Scan(int table, const ScanFn& fn) const override { return inner_->Scan(table, fn); }
  Status ScanShards(int table, uint32_t num_virtual_shards, const std::vector<uint8_t>& wanted,
                    const ScanFn& fn) const override {
    return inner_->ScanShards(table, num_virtual_shards, wanted, fn);
  }
  Status Put(int table, const Key* keys, size_t n, const float* rows, const RowStats* stats) override {
    return inner_->Put(table, keys, n, rows, stats);
  }
  Status Contains(int table, const Key* keys, size_t n, uint8_t* present) override {
    return inner_->Contains(table, keys, n, present);
  }
  Status Erase(int table, const Key* keys, size_t n) override { return inner_->Erase(table, keys, n); }
  // The policy state does not depend on the rows' width: it stays.
  Status RewriteTable(const TableSpec& new_spec, const RowMapFn& map,
                      const std::string& scratch_dir) override {
    return inner_->RewriteTable(new_spec, map, scratch_dir);
  }
  Status DropTable(int table) override {
    RETURN_IF_ERROR(inner_->DropTable(table));
    std::unique_lock lock(mu_);
    tables_.erase(table);
    return Status::OK();
  }
  Status Flush() override { return inner_->Flush(); }

  StatusOr<TableStats> Stats(int table) const override {
    ASSIGN_OR_RETURN(TableStats s, inner_->Stats(table));
    PolicyTable* t = Find(table);
    if (!t) return s;
    std::lock_guard lock(t->mu);
    s.admitted = 0;
    for (const auto& sp : t->shard) {
      if (!sp) continue;
      s.admitted += sp->admitted;
      s.rejected_lookups += sp->rejected_lookups;
      s.dropped_updates += sp->dropped_updates;
      s.evicted_stale += sp->evicted_stale;
      s.evicted_rare += sp->evicted_rare;
    }
    if (!t->policy.admission.enabled()) s.admitted = s.created;
    return s;
  }

  StatusOr<uint64_t> Evict(int table, const EvictPolicy& p) override {
    PolicyTable* t = Find(table);
    if (!t) return Status::NotFound("table " + std::to_string(table) + " was never created");
    return EvictShards(t, table, held_, p);
  }

  // Evicts each shard by its table's policy at the shard's last step, then
  // snapshots.
  Status Snapshot(const std::string& dir) override {
    for (auto& [id, t] : AllTables()) {
      const EvictionOptions& e = t->policy.eviction;
      if (!e.enabled()) continue;
      std::map<uint32_t, std::vector<uint8_t>> by_step;  // last step -> shards
      {
        std::lock_guard lock(t->mu);
        for (uint32_t v = 0; v < num_shards_; ++v) {
          if (!t->shard[v]) continue;
          auto& want = by_step[t->shard[v]->last_step];
          want.resize(num_shards_, 0);
          want[v] = 1;
        }
      }
      for (const auto& [step, want] : by_step)
        RETURN_IF_ERROR_CTX(EvictShards(t, id, want, PolicyOf(e, step)).status(),
                            "eviction before snapshot");
    }
    return inner_->Snapshot(dir);
  }

  StatusOr<std::string> SavePolicyState(uint32_t shard) const override {
    if (shard >= num_shards_ || !held_[shard])
      return Status::InvalidArgument("policy state of virtual shard " + std::to_string(shard) +
                                     ", which this store does not hold");
    const auto all = AllTables();
    std::string out;
    AppendStateHeader(&out, num_shards_, shard, static_cast<uint32_t>(all.size()));
    for (const auto& [id, t] : all) {
      std::lock_guard lock(t->mu);
      AppendTableState(&out, id, t->policy.admission, *t->shard[shard]);
    }
    return out;
  }

  Status LoadPolicyState(uint32_t shard, const std::string& blob) override {
    if (shard >= num_shards_ || !held_[shard])
      return Status::InvalidArgument("policy state of virtual shard " + std::to_string(shard) +
                                     ", which this store does not hold");
    // Everything is parsed and checked before anything changes.
    ASSIGN_OR_RETURN(std::vector<TableStateRecord> records, DecodeShardState(blob, num_shards_, shard));
    std::vector<PolicyTable*> tables;
    for (const TableStateRecord& rec : records) {
      tables.push_back(Find(rec.table_id));
      if (!tables.back())
        return Status::InvalidArgument("policy state names table " + std::to_string(rec.table_id) +
                                       ", which is not a table of this model");
    }
    for (size_t i = 0; i < records.size(); ++i) {
      const TableStateRecord& e = records[i];
      PolicyTable* t = tables[i];
      std::lock_guard lock(t->mu);
      ShardPolicy& sp = *t->shard[shard];
      const AdmissionOptions& a = t->policy.admission;
      static_cast<ShardCounters&>(sp) = e.counters;
      if (!sp.sketch) continue;  // admission is off now
      const bool same = a.min_seen == e.min_seen && a.probability == e.probability &&
                        sp.sketch->bytes() == e.sketch.size();
      if (same) {
        std::memcpy(sp.sketch->data(), e.sketch.data(), e.sketch.size());
      } else if (!t->warned_changed) {
        t->warned_changed = true;
        spdlog::warn(
            "admission settings changed since the checkpoint (min_seen {} -> {}, probability {} -> "
            "{}, sketch {} -> {} bytes per shard): table {} starts counting sightings afresh",
            e.min_seen, a.min_seen, e.probability, a.probability, e.sketch.size(),
            sp.sketch->bytes(), t->id);
      }
    }
    return Status::OK();
  }

 private:
  void AddTable(int id) {
    auto t = std::make_unique<PolicyTable>();
    t->policy = opt_.For(id);
    t->shard.resize(num_shards_);
    const size_t sketch_bytes =
        std::max(PolicyOptions::kMinShardSketchBytes, t->policy.admission.counter_bytes / num_shards_);
    for (uint32_t v = 0; v < num_shards_; ++v) {
      if (!held_[v]) continue;
      t->shard[v] = std::make_unique<ShardPolicy>();
      if (t->policy.admission.enabled()) t->shard[v]->sketch = std::make_unique<CountMinSketch>(sketch_bytes);
    }
    t->id = id;
    tables_[id] = std::move(t);
  }

  PolicyTable* Find(int table) const {
    std::shared_lock lock(mu_);
    auto it = tables_.find(table);
    return it == tables_.end() ? nullptr : it->second.get();
  }

  std::vector<std::pair<int, PolicyTable*>> AllTables() const {
    std::shared_lock lock(mu_);
    std::vector<std::pair<int, PolicyTable*>> all;
    for (auto& [id, t] : tables_) all.emplace_back(id, t.get());
    return all;
  }

  // The virtual shard of every key; an error for a key of a shard this
  // store does not hold (the caller routed it wrongly).
  StatusOr<std::vector<uint32_t>> ShardsOf(int table, const Key* keys, size_t n) const {
    std::vector<uint32_t> sid(n, 0);
    if (num_shards_ == 1) return sid;
    for (size_t i = 0; i < n; ++i) {
      sid[i] = VirtualShardOf(keys[i], num_shards_);
      if (!held_[sid[i]])
        return Status::InvalidArgument("table " + std::to_string(table) + ": key " +
                                       std::to_string(keys[i]) + " belongs to virtual shard " +
                                       std::to_string(sid[i]) + ", which this store does not hold");
    }
    return sid;
  }

  // touched[v] = 1 for each shard v with a key in the call.
  std::vector<uint8_t> Touched(const std::vector<uint32_t>& sid) const {
    std::vector<uint8_t> touched(num_shards_, 0);
    for (uint32_t v : sid) touched[v] = 1;
    return touched;
  }

  // Counts a training sighting; returns whether the key is admitted.
  static bool Sight(const AdmissionOptions& a, ShardPolicy* sp, Key k) {
    if (a.min_seen > 1) {
      uint8_t before = sp->sketch->Get(k);
      if (before >= a.min_seen) return true;
      uint8_t now = sp->sketch->Add(k);
      if (now >= a.min_seen) ++sp->admitted;
      return now >= a.min_seen;
    }
    if (sp->sketch->Get(k) == CountMinSketch::kMarked) return true;
    uint64_t r = Mix64(k ^ Mix64(a.seed + 0x2545f4914f6cdd1dULL * sp->calls));
    if (static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) >= a.probability) return false;
    sp->sketch->Mark(k);
    ++sp->admitted;
    return true;
  }

  static bool IsAdmitted(const AdmissionOptions& a, const ShardPolicy& sp, Key k) {
    uint8_t c = sp.sketch->Get(k);
    return a.min_seen > 1 ? c >= a.min_seen : c == CountMinSketch::kMarked;
  }

  static EvictPolicy PolicyOf(const EvictionOptions& e, uint32_t now_step) {
    EvictPolicy p;
    p.now_step = now_step;
    p.max_unseen_steps = e.max_unseen_steps;
    p.min_count = e.min_count;
    return p;
  }

  // Evicts by `p` the rows of the shards with wanted[v] != 0, counting each
  // shard's evictions in its own state.
  StatusOr<uint64_t> EvictShards(PolicyTable* t, int table, const std::vector<uint8_t>& wanted,
                                 const EvictPolicy& p) {
    std::vector<Key> victims;
    std::vector<uint64_t> stale(num_shards_, 0), rare(num_shards_, 0);
    auto visit = [&](Key k, const float*, const RowStats& s) {
      bool is_stale = p.max_unseen_steps > 0 && uint64_t{s.last_step} + p.max_unseen_steps < p.now_step;
      bool is_rare = p.min_count > 0 && s.count < p.min_count;
      if (!is_stale && !is_rare) return true;
      const uint32_t v = num_shards_ == 1 ? 0 : VirtualShardOf(k, num_shards_);
      ++(is_stale ? stale : rare)[v];
      victims.push_back(k);
      return true;
    };
    if (std::all_of(wanted.begin(), wanted.end(), [](uint8_t w) { return w != 0; }))
      RETURN_IF_ERROR(inner_->Scan(table, visit));
    else
      RETURN_IF_ERROR(inner_->ScanShards(table, num_shards_, wanted, visit));
    if (!victims.empty()) RETURN_IF_ERROR(inner_->Erase(table, victims.data(), victims.size()));
    std::lock_guard lock(t->mu);
    for (uint32_t v = 0; v < num_shards_; ++v) {
      if (!t->shard[v]) continue;
      t->shard[v]->evicted_stale += stale[v];
      t->shard[v]->evicted_rare += rare[v];
    }
    return static_cast<uint64_t>(victims.size());
  }

  std::unique_ptr<EmbeddingStore> inner_;
  PolicyOptions opt_;
  const uint32_t num_shards_;
  std::vector<uint8_t> held_;  // by virtual shard
  mutable std::shared_mutex mu_;
  std::map<int, std::unique_ptr<PolicyTable>> tables_;
};

}  // namespace

Status AdmissionOptions::Validate() const {
  if (min_seen > 255) return Status::InvalidArgument("admission min_seen " + std::to_string(min_seen) + " > 255");
  if (!(probability > 0.0 && probability <= 1.0))
    return Status::InvalidArgument("admission probability " + std::to_string(probability) + " not in (0, 1]");
  if (min_seen > 1 && probability < 1.0)
    return Status::InvalidArgument("admission: set min_seen or probability, not both");
  if (enabled() && counter_bytes < 1024)
    return Status::InvalidArgument("admission counter_bytes below 1 KiB");
  return Status::OK();
}

Status EvictionOptions::Validate() const {
  if (every_steps > 0 && !enabled())
    return Status::InvalidArgument("eviction every_steps set without max_unseen_steps or min_count");
  return Status::OK();
}

bool PolicyOptions::enabled() const {
  if (defaults.enabled()) return true;
  for (const auto& [id, p] : per_table)
    if (p.enabled()) return true;
  return false;
}

Status PolicyOptions::Validate() const {
  RETURN_IF_ERROR_CTX(defaults.admission.Validate(), "default table policy");
  RETURN_IF_ERROR_CTX(defaults.eviction.Validate(), "default table policy");
  for (const auto& [id, p] : per_table) {
    RETURN_IF_ERROR_CTX(p.admission.Validate(), "policy of table " + std::to_string(id));
    RETURN_IF_ERROR_CTX(p.eviction.Validate(), "policy of table " + std::to_string(id));
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<EmbeddingStore>> NewPolicyStore(std::unique_ptr<EmbeddingStore> inner,
                                                         const PolicyOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  if (!opt.enabled()) return inner;
  return std::unique_ptr<EmbeddingStore>(std::make_unique<PolicyStore>(std::move(inner), opt));
}

}  // namespace ctrps::storage
