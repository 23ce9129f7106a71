// The admission/eviction wrapper (see admission.h).
#include "storage/admission.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "common/hash.h"

namespace ctrps::storage {
namespace {

// Count-min sketch of 8-bit saturating counters, conservative update.
class CountMinSketch {
 public:
  static constexpr int kDepth = 4;
  static constexpr uint8_t kMarked = 255;  // saturated = admitted by probability

  explicit CountMinSketch(size_t bytes) {
    size_t w = 64;
    while (w * 2 * kDepth <= bytes) w *= 2;
    width_mask_ = w - 1;
    counters_.assign(w * kDepth, 0);
  }
  uint8_t Get(Key k) const {
    uint8_t m = 255;
    for (int d = 0; d < kDepth; ++d) m = std::min(m, counters_[Index(k, d)]);
    return m;
  }
  // Adds one sighting; returns the new estimate.
  uint8_t Add(Key k) {
    uint8_t m = Get(k);
    if (m == 255) return m;
    for (int d = 0; d < kDepth; ++d) {
      uint8_t& c = counters_[Index(k, d)];
      if (c == m) ++c;
    }
    return m + 1;
  }
  void Mark(Key k) {
    for (int d = 0; d < kDepth; ++d) counters_[Index(k, d)] = kMarked;
  }

 private:
  size_t Index(Key k, int d) const {
    return d * (width_mask_ + 1) + (Mix64(k + 0x9e3779b97f4a7c15ULL * (d + 1)) & width_mask_);
  }
  size_t width_mask_ = 0;
  std::vector<uint8_t> counters_;
};

struct PolicyTable {
  TablePolicy policy;
  std::unique_ptr<CountMinSketch> sketch;  // only with admission
  std::mutex mu;                           // guards everything below
  uint64_t calls = 0;
  uint32_t last_step = 0;
  uint32_t last_evict_step = 0;
  uint64_t admitted = 0, rejected_lookups = 0, dropped_updates = 0, evicted_stale = 0,
           evicted_rare = 0;
};

class PolicyStore final : public EmbeddingStore {
 public:
  PolicyStore(std::unique_ptr<EmbeddingStore> inner, const PolicyOptions& opt)
      : inner_(std::move(inner)), opt_(opt) {
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
    std::vector<uint8_t> ok(n);
    size_t admitted = 0;
    {
      std::lock_guard lock(t->mu);
      ++t->calls;
      for (size_t i = 0; i < n; ++i) admitted += ok[i] = Sight(t, keys[i]);
      t->rejected_lookups += n - admitted;
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
    bool evict_now = false;
    std::vector<uint8_t> ok;
    size_t admitted = n;
    {
      std::lock_guard lock(t->mu);
      t->last_step = std::max(t->last_step, step);
      const EvictionOptions& e = t->policy.eviction;
      if (e.enabled() && e.every_steps > 0 && step >= t->last_evict_step + e.every_steps) {
        evict_now = true;
        t->last_evict_step = step;
      }
      if (t->policy.admission.enabled()) {
        ok.resize(n);
        admitted = 0;
        for (size_t i = 0; i < n; ++i) admitted += ok[i] = IsAdmitted(t, keys[i]);
      }
    }
    if (evict_now) RETURN_IF_ERROR_CTX(EvictByPolicy(t, table, step).status(), "scheduled eviction");
    if (admitted == n) return inner_->Modify(table, keys, n, step, fn);
    // Not-admitted keys that have a row anyway (created before a restart)
    // are updated; the others' updates are dropped.
    std::vector<Key> rest;
    std::vector<size_t> rest_at;
    for (size_t i = 0; i < n; ++i)
      if (!ok[i]) rest.push_back(keys[i]), rest_at.push_back(i);
    std::vector<uint8_t> present(rest.size());
    RETURN_IF_ERROR(inner_->Contains(table, rest.data(), rest.size(), present.data()));
    for (size_t j = 0; j < rest.size(); ++j) ok[rest_at[j]] = present[j];
    std::vector<Key> k;
    std::vector<size_t> at;
    for (size_t i = 0; i < n; ++i)
      if (ok[i]) k.push_back(keys[i]), at.push_back(i);
    {
      std::lock_guard lock(t->mu);
      t->dropped_updates += n - k.size();
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
    s.admitted = t->policy.admission.enabled() ? t->admitted : s.created;
    s.rejected_lookups = t->rejected_lookups;
    s.dropped_updates = t->dropped_updates;
    s.evicted_stale = t->evicted_stale;
    s.evicted_rare = t->evicted_rare;
    return s;
  }

  StatusOr<uint64_t> Evict(int table, const EvictPolicy& p) override {
    PolicyTable* t = Find(table);
    if (!t) return Status::NotFound("table " + std::to_string(table) + " was never created");
    return EvictWith(t, table, p);
  }

  // Evicts by each table's policy at the last step seen, then snapshots.
  Status Snapshot(const std::string& dir) override {
    std::vector<std::pair<int, PolicyTable*>> all;
    {
      std::shared_lock lock(mu_);
      for (auto& [id, t] : tables_) all.emplace_back(id, t.get());
    }
    for (auto& [id, t] : all) {
      uint32_t step;
      {
        std::lock_guard lock(t->mu);
        step = t->last_step;
      }
      RETURN_IF_ERROR_CTX(EvictByPolicy(t, id, step).status(), "eviction before snapshot");
    }
    return inner_->Snapshot(dir);
  }

 private:
  void AddTable(int id) {
    auto t = std::make_unique<PolicyTable>();
    t->policy = opt_.For(id);
    if (t->policy.admission.enabled())
      t->sketch = std::make_unique<CountMinSketch>(t->policy.admission.counter_bytes);
    tables_[id] = std::move(t);
  }

  PolicyTable* Find(int table) const {
    std::shared_lock lock(mu_);
    auto it = tables_.find(table);
    return it == tables_.end() ? nullptr : it->second.get();
  }

  // Counts a training sighting; returns whether the key is admitted.
  bool Sight(PolicyTable* t, Key k) {
    const AdmissionOptions& a = t->policy.admission;
    if (a.min_seen > 1) {
      uint8_t before = t->sketch->Get(k);
      if (before >= a.min_seen) return true;
      uint8_t now = t->sketch->Add(k);
      if (now >= a.min_seen) ++t->admitted;
      return now >= a.min_seen;
    }
    if (t->sketch->Get(k) == CountMinSketch::kMarked) return true;
    uint64_t r = Mix64(k ^ Mix64(a.seed + 0x2545f4914f6cdd1dULL * t->calls));
    if (static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) >= a.probability) return false;
    t->sketch->Mark(k);
    ++t->admitted;
    return true;
  }

  bool IsAdmitted(PolicyTable* t, Key k) const {
    const AdmissionOptions& a = t->policy.admission;
    uint8_t c = t->sketch->Get(k);
    return a.min_seen > 1 ? c >= a.min_seen : c == CountMinSketch::kMarked;
  }

  StatusOr<uint64_t> EvictByPolicy(PolicyTable* t, int table, uint32_t step) {
    const EvictionOptions& e = t->policy.eviction;
    if (!e.enabled()) return uint64_t{0};
    EvictPolicy p;
    p.now_step = step;
    p.max_unseen_steps = e.max_unseen_steps;
    p.min_count = e.min_count;
    return EvictWith(t, table, p);
  }

  StatusOr<uint64_t> EvictWith(PolicyTable* t, int table, const EvictPolicy& p) {
    std::vector<Key> victims;
    uint64_t stale = 0, rare = 0;
    RETURN_IF_ERROR(inner_->Scan(table, [&](Key k, const float*, const RowStats& s) {
      bool is_stale = p.max_unseen_steps > 0 && uint64_t{s.last_step} + p.max_unseen_steps < p.now_step;
      bool is_rare = p.min_count > 0 && s.count < p.min_count;
      if (is_stale) ++stale; else if (is_rare) ++rare;
      if (is_stale || is_rare) victims.push_back(k);
      return true;
    }));
    if (!victims.empty()) RETURN_IF_ERROR(inner_->Erase(table, victims.data(), victims.size()));
    std::lock_guard lock(t->mu);
    t->evicted_stale += stale;
    t->evicted_rare += rare;
    return static_cast<uint64_t>(victims.size());
  }

  std::unique_ptr<EmbeddingStore> inner_;
  PolicyOptions opt_;
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
