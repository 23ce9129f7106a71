#include "storage/rocksdb_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <unistd.h>

#include "storage/row_codec.h"
#include "storage/rocksdb_shard.h"
#include "storage/snapshot.h"
#include "storage/task_pool.h"
#include "storage/written_keys.h"

namespace ctrps::storage {

std::string ShardDirName(uint32_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%04u", shard);
  return buf;
}

Status CheckVirtualShardsFile(const std::string& dir, uint32_t v) {
  const std::string path = dir + "/VIRTUAL_SHARDS";
  std::ifstream in(path);
  if (in) {
    uint32_t stored = 0;
    if (!(in >> stored) || stored == 0)
      return Status::Corruption(path + ": expected a positive shard count");
    if (stored != v)
      return Status::FailedPrecondition(path + ": store was created with " +
                                        std::to_string(stored) + " virtual shards, opened with " +
                                        std::to_string(v));
    return Status::OK();
  }
  // tmp + rename: several stores (one per virtual shard of a server) may
  // share the root directory and must never read a half-written file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream out(tmp);
    out << v << "\n";
    out.flush();
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::OK();
}

namespace {

struct DiskTable {
  TableSpec spec;
  std::mutex mu;                      // serialises calls on the table
  std::vector<uint64_t> rows;         // per virtual shard, mirrors the 'n' meta key
  // While a bulk load runs (Put into a table that was empty): a superset of
  // the keys of every row on disk, so Put reads only the keys it may
  // overwrite. Null otherwise; dropped by the first other write.
  std::unique_ptr<WrittenKeys> written;
  std::atomic<uint64_t> lookups{0}, created{0};
};

// The unique keys of a batch, grouped by shard and sorted within a shard.
struct Grouped {
  std::vector<Key> keys;                 // unique
  std::vector<uint32_t> slot;            // input i -> index into keys
  std::vector<char> enc;                 // encoded row keys, kRowKeySize each
  struct Run { uint32_t shard, begin, end; };
  std::vector<Run> runs;
};

class RocksDbStoreImpl final : public RocksDbStore {
 public:
  Status Init(const RocksDbOptions& opt) {
    opt_ = opt;
    std::error_code ec;
    std::filesystem::create_directories(opt.dir, ec);
    if (ec) return Status::IOError("cannot create store dir " + opt.dir + ": " + ec.message());
    RETURN_IF_ERROR(CheckVirtualShardsFile(opt.dir, opt.virtual_shards));
    if (opt.read_threads < 1 || opt.read_threads > 64)
      return Status::InvalidArgument("rocksdb store: read_threads " + std::to_string(opt.read_threads) +
                                     " not in [1, 64]");
    pool_ = std::make_unique<TaskPool>(opt.read_threads);
    shared_ = NewRocksShared(opt);
    shards_.resize(opt.virtual_shards);
    std::vector<uint32_t> held = opt.shards;
    if (held.empty())
      for (uint32_t s = 0; s < opt.virtual_shards; ++s) held.push_back(s);
    for (uint32_t s : held) {
      ASSIGN_OR_RETURN(shards_[s], RocksShard::Open(opt.dir + "/" + ShardDirName(s), s, opt, shared_));
      RETURN_IF_ERROR(LoadMeta(s));
    }
    return Status::OK();
  }

  ~RocksDbStoreImpl() override = default;  // shards close (and persist memtables) themselves

  Status CreateTable(const TableSpec& spec) override {
    RETURN_IF_ERROR(spec.Validate());
    std::unique_lock lock(tables_mu_);
    auto it = tables_.find(spec.table_id);
    if (it != tables_.end()) return SameShape(it->second->spec, spec);
    std::string enc = codec::EncodeSpec(spec);
    for (auto& sh : shards_) {
      if (!sh) continue;
      ShardBatch b;
      b.Put(codec::SpecKey(spec.table_id), enc);
      RETURN_IF_ERROR_CTX(sh->Write(&b), "creating table " + std::to_string(spec.table_id));
    }
    auto t = std::make_unique<DiskTable>();
    t->spec = spec;
    t->rows.assign(shards_.size(), 0);
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
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    const int rf = t->spec.row_floats();
    if (out_floats < 0 || out_floats > rf)
      return Status::InvalidArgument("lookup of " + std::to_string(out_floats) +
                                     " floats from table " + std::to_string(table) +
                                     " whose rows have " + std::to_string(rf));
    std::lock_guard lock(t->mu);
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
    size_t missing = 0;
    for (size_t u = 0; u < g.keys.size(); ++u) {
      if (found[u]) continue;
      ++missing;
      InitRow(t->spec.init, g.keys[u], t->spec.dim, t->spec.slot_floats, rows.data() + u * rf);
      st[u] = RowStats{};
    }
    if (create_missing && missing > 0) {
      t->written.reset();  // rows written outside a bulk load
      RETURN_IF_ERROR(Commit(t, g, rows, st, found, /*write_found=*/false, nullptr));
      t->created += missing;
    }
    for (size_t i = 0; i < n; ++i)
      std::copy_n(rows.data() + size_t{g.slot[i]} * rf, out_floats, out + i * out_floats);
    t->lookups += n;
    return Status::OK();
  }

  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
    std::vector<float> old(rows);  // for the undo of a failed multi-shard write
    std::vector<RowStats> old_st(st);
    size_t missing = 0;
    for (size_t u = 0; u < g.keys.size(); ++u) {
      if (found[u]) continue;
      ++missing;
      InitRow(t->spec.init, g.keys[u], t->spec.dim, t->spec.slot_floats, rows.data() + u * rf);
      st[u] = RowStats{};
    }
    for (size_t i = 0; i < n; ++i) {
      uint32_t u = g.slot[i];
      fn(i, rows.data() + size_t{u} * rf);
      ++st[u].count;
      st[u].last_step = step;
    }
    t->written.reset();  // rows written outside a bulk load
    RETURN_IF_ERROR(Commit(t, g, rows, st, found, /*write_found=*/true, &old, &old_st));
    t->created += missing;
    return Status::OK();
  }

  Status Scan(int table, const ScanFn& fn) const override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::vector<float> row(rf);
    bool stop = false;
    for (const auto& sh : shards_) {
      if (!sh || stop) continue;
      Status s = sh->Scan(codec::TableBegin(table), codec::TableEnd(table),
                          [&](std::string_view k, std::string_view v) {
                            if (k.size() != codec::kRowKeySize || v.size() != codec::RowValueSize(rf))
                              return true;  // never written by this store: skipped
                            RowStats rs;
                            codec::DecodeRowValue(v.data(), rf, row.data(), &rs);
                            if (!fn(codec::DecodeRowKey(k.data()), row.data(), rs)) stop = true;
                            return !stop;
                          });
      RETURN_IF_ERROR_CTX(s, "scan of table " + std::to_string(table));
    }
    return Status::OK();
  }

  Status Put(int table, const Key* keys, size_t n, const float* in_rows,
             const RowStats* in_stats) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    std::lock_guard lock(t->mu);
    return PutLocked(t, keys, n, in_rows, in_stats, /*bulk=*/true);
  }

  Status Contains(int table, const Key* keys, size_t n, uint8_t* present) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    std::lock_guard lock(t->mu);
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    RETURN_IF_ERROR(ReadUnique(g, t->spec.row_floats(), &rows, &st, &found));
    for (size_t i = 0; i < n; ++i) present[i] = found[g.slot[i]];
    return Status::OK();
  }

  Status Erase(int table, const Key* keys, size_t n) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
    return CommitErase(t, g, rows, st, found);
  }

  Status DropTable(int table) override {
    std::unique_lock lock(tables_mu_);
    auto it = tables_.find(table);
    if (it == tables_.end()) return Status::NotFound("drop of unknown table " + std::to_string(table));
    for (auto& sh : shards_) {
      if (!sh) continue;
      ShardBatch b;
      b.DeleteRange(codec::TableBegin(table), codec::TableEnd(table));
      b.Delete(codec::SpecKey(table));
      b.Delete(codec::CountKey(table));
      RETURN_IF_ERROR_CTX(sh->Write(&b), "dropping table " + std::to_string(table));
    }
    tables_.erase(it);
    return Status::OK();
  }

  Status Flush() override {
    for (auto& sh : shards_)
      if (sh) RETURN_IF_ERROR(sh->Flush());
    return Status::OK();
  }

  StatusOr<TableStats> Stats(int table) const override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    std::lock_guard lock(t->mu);
    TableStats s;
    s.table_id = table;
    for (uint64_t r : t->rows) s.rows += r;
    s.bytes = s.rows * (codec::kRowKeySize + codec::RowValueSize(t->spec.row_floats()));
    s.lookups = t->lookups;
    s.created = t->created;
    return s;
  }

  Status Snapshot(const std::string& dir) override {
    // Every table lock is held, so the checkpoints of all shards are of the
    // same point in time.
    std::shared_lock tl(tables_mu_);
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& [id, t] : tables_) locks.emplace_back(t->mu);
    if (std::filesystem::exists(dir)) return Status::FailedPrecondition("snapshot dir " + dir + " exists");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create snapshot dir " + dir + ": " + ec.message());
    for (auto& sh : shards_)
      if (sh) RETURN_IF_ERROR(sh->Checkpoint(dir + "/" + ShardDirName(sh->id())));
    RETURN_IF_ERROR(CheckVirtualShardsFile(dir, opt_.virtual_shards));
    return WriteManifest(dir);
  }

  Status ReadRows(int table, const Key* keys, size_t n, float* out_rows, RowStats* out_stats,
                  uint8_t* out_found) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    const int rf = t->spec.row_floats();
    std::lock_guard lock(t->mu);
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
    for (size_t i = 0; i < n; ++i) {
      uint32_t u = g.slot[i];
      out_found[i] = found[u];
      if (!found[u]) continue;
      std::copy_n(rows.data() + size_t{u} * rf, rf, out_rows + i * rf);
      out_stats[i] = st[u];
    }
    return Status::OK();
  }

  Status WriteRows(int table, const Key* keys, size_t n, const float* rows,
                   const RowStats* stats) override {
    ASSIGN_OR_RETURN(DiskTable* t, Get(table));
    std::lock_guard lock(t->mu);
    return PutLocked(t, keys, n, rows, stats, /*bulk=*/false);
  }

 private:
  static Status SameShape(const TableSpec& old, const TableSpec& spec) {
    if (old.dim != spec.dim || old.slot_floats != spec.slot_floats)
      return Status::FailedPrecondition("table " + std::to_string(spec.table_id) + " exists with dim " +
                                        std::to_string(old.dim) + "+" + std::to_string(old.slot_floats) +
                                        " slots, asked for " + std::to_string(spec.dim) + "+" +
                                        std::to_string(spec.slot_floats));
    return Status::OK();
  }

  // Reads the table specs and row counts stored in shard s.
  Status LoadMeta(uint32_t s) {
    RocksShard* sh = shards_[s].get();
    const std::string ctx = "loading table specs of " + sh->path();
    std::map<int, TableSpec> specs;
    Status parse;
    RETURN_IF_ERROR_CTX(sh->Scan("m", "n", [&](std::string_view k, std::string_view v) {
      auto spec = codec::DecodeSpec(std::string(v));
      if (!spec.ok()) { parse = spec.status(); return false; }
      specs[static_cast<uint8_t>(k[1])] = *spec;
      return true;
    }), ctx);
    RETURN_IF_ERROR_CTX(parse, ctx);
    for (auto& [id, spec] : specs) {
      auto it = tables_.find(id);
      if (it == tables_.end()) {
        auto t = std::make_unique<DiskTable>();
        t->spec = spec;
        t->rows.assign(shards_.size(), 0);
        it = tables_.emplace(id, std::move(t)).first;
      } else {
        RETURN_IF_ERROR_CTX(SameShape(it->second->spec, spec), ctx);
      }
    }
    return sh->Scan("n", "o", [&](std::string_view k, std::string_view v) {
      auto it = tables_.find(static_cast<uint8_t>(k[1]));
      if (it != tables_.end() && v.size() == 8) std::memcpy(&it->second->rows[s], v.data(), 8);
      return true;
    });
  }

  StatusOr<DiskTable*> Get(int table) const {
    std::shared_lock lock(tables_mu_);
    auto it = tables_.find(table);
    if (it == tables_.end())
      return Status::NotFound("table " + std::to_string(table) + " was never created");
    return it->second.get();
  }

  Status Group(const Key* keys, size_t n, Grouped* g) const {
    const uint32_t V = opt_.virtual_shards;
    struct Item { uint32_t shard; uint32_t i; Key key; };
    thread_local std::vector<Item> items;
    items.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = VirtualShardOf(keys[i], V);
      if (!shards_[s])
        return Status::InvalidArgument("key " + std::to_string(keys[i]) + " belongs to virtual shard " +
                                       std::to_string(s) + ", which this store does not hold");
      items[i] = Item{s, static_cast<uint32_t>(i), keys[i]};
    }
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
      return a.shard != b.shard ? a.shard < b.shard : a.key < b.key;
    });
    g->keys.clear();
    g->runs.clear();
    g->slot.resize(n);
    for (size_t j = 0; j < n; ++j) {
      const Item& it = items[j];
      bool new_key = g->keys.empty() || j == 0 || items[j - 1].key != it.key;
      if (new_key) {
        if (g->runs.empty() || g->runs.back().shard != it.shard)
          g->runs.push_back({it.shard, static_cast<uint32_t>(g->keys.size()), 0});
        g->keys.push_back(it.key);
        g->runs.back().end = static_cast<uint32_t>(g->keys.size());
      }
      g->slot[it.i] = static_cast<uint32_t>(g->keys.size() - 1);
    }
    g->enc.resize(g->keys.size() * codec::kRowKeySize);
    for (size_t u = 0; u < g->keys.size(); ++u)
      codec::EncodeRowKey(g->keys[u], g->enc.data() + u * codec::kRowKeySize);
    return Status::OK();
  }

  // One MultiGet per shard run, the runs spread over the read pool (each
  // run fills only its own range of rows/st/found, so the result does not
  // depend on the threads). need (optional): read only keys u with
  // need[u] != 0; the others are reported not found.
  Status ReadUnique(const Grouped& g, int rf, std::vector<float>* rows, std::vector<RowStats>* st,
                    std::vector<uint8_t>* found, const std::vector<uint8_t>* need = nullptr) {
    const size_t u = g.keys.size();
    rows->resize(u * rf);
    st->assign(u, RowStats{});
    found->assign(u, 0);
    const size_t vsize = codec::RowValueSize(rf);
    auto read_run = [&](size_t r) -> Status {
      const Grouped::Run& run = g.runs[r];
      const char* keys = g.enc.data() + size_t{run.begin} * codec::kRowKeySize;
      size_t count = run.end - run.begin;
      thread_local std::vector<char> sub_enc;
      thread_local std::vector<uint32_t> sub_at;  // sub-batch index -> key index
      if (need) {
        sub_enc.clear();
        sub_at.clear();
        for (uint32_t k = run.begin; k < run.end; ++k) {
          if (!(*need)[k]) continue;
          const char* e = g.enc.data() + size_t{k} * codec::kRowKeySize;
          sub_enc.insert(sub_enc.end(), e, e + codec::kRowKeySize);
          sub_at.push_back(k);
        }
        keys = sub_enc.data();
        count = sub_at.size();
      }
      Status bad;
      RETURN_IF_ERROR(shards_[run.shard]->MultiGet(keys, codec::kRowKeySize, count, [&](size_t i, std::string_view v) {
        const size_t k = need ? sub_at[i] : run.begin + i;
        if (v.size() != vsize) {
          if (bad.ok())
            bad = Status::Corruption("row of key " + std::to_string(g.keys[k]) + " in shard " +
                                     std::to_string(run.shard) + " has " + std::to_string(v.size()) +
                                     " bytes, expected " + std::to_string(vsize));
          return;
        }
        codec::DecodeRowValue(v.data(), rf, rows->data() + k * rf, &(*st)[k]);
        (*found)[k] = 1;
      }));
      return bad;
    };
    // Small batches stay on the caller: waking a helper costs more than a
    // few point reads.
    if (g.runs.size() > 1 && u >= kMinParallelReadKeys) return pool_->Run(g.runs.size(), read_run);
    for (size_t r = 0; r < g.runs.size(); ++r) RETURN_IF_ERROR(read_run(r));
    return Status::OK();
  }

  // bulk (Put): keys that the table's WrittenKeys filter proves absent are
  // not read; an empty table starts a filter. Otherwise (the tiered
  // store's write-backs) the filter is dropped: the bulk load is over.
  Status PutLocked(DiskTable* t, const Key* keys, size_t n, const float* in_rows,
                   const RowStats* in_stats, bool bulk) {
    const int rf = t->spec.row_floats();
    if (!bulk) {
      t->written.reset();
    } else if (!t->written) {
      uint64_t total = 0;
      for (uint64_t r : t->rows) total += r;
      if (total == 0) t->written = std::make_unique<WrittenKeys>();  // counts are exact
    }
    Grouped& g = scratch_g();
    RETURN_IF_ERROR(Group(keys, n, &g));
    std::vector<float>& rows = scratch_rows();
    std::vector<RowStats>& st = scratch_stats();
    std::vector<uint8_t>& found = scratch_found();
    if (t->written) {
      std::vector<uint8_t>& need = scratch_need();
      need.resize(g.keys.size());
      size_t maybe = 0;
      for (size_t u = 0; u < g.keys.size(); ++u) maybe += need[u] = t->written->MayContain(g.keys[u]);
      RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found, maybe < g.keys.size() ? &need : nullptr));
      // Added before the write: a superset stays correct if the write fails.
      for (size_t u = 0; u < g.keys.size(); ++u)
        if (!need[u]) t->written->Add(g.keys[u]);
    } else {
      RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
    }
    bool any_found = false;
    for (size_t u = 0; u < g.keys.size() && !any_found; ++u) any_found = found[u];
    std::vector<float> old;  // previous values of found rows, for the undo
    std::vector<RowStats> old_st;
    if (any_found) {
      old = rows;
      old_st = st;
    }
    for (size_t i = 0; i < n; ++i) {  // later duplicates win
      std::copy_n(in_rows + i * rf, rf, rows.data() + size_t{g.slot[i]} * rf);
      st[g.slot[i]] = in_stats ? in_stats[i] : RowStats{};
    }
    return Commit(t, g, rows, st, found, /*write_found=*/true, &old, &old_st);
  }

  // Writes the rows of g (all, or only the not-found ones) plus each
  // shard's new row count, shard by shard; undoes written shards if a later
  // one fails. old/old_st: the found rows' previous values (may be null
  // when found rows are not written).
  Status Commit(DiskTable* t, const Grouped& g, const std::vector<float>& rows,
                const std::vector<RowStats>& st, const std::vector<uint8_t>& found, bool write_found,
                const std::vector<float>* old, const std::vector<RowStats>* old_st = nullptr) {
    const int rf = t->spec.row_floats();
    const int table = t->spec.table_id;
    std::string val(codec::RowValueSize(rf), '\0');
    std::vector<ShardBatch> redo(g.runs.size()), undo(g.runs.size());
    std::vector<uint64_t> new_rows(g.runs.size());
    for (size_t r = 0; r < g.runs.size(); ++r) {
      const auto& run = g.runs[r];
      uint64_t added = 0;
      for (uint32_t u = run.begin; u < run.end; ++u) {
        std::string_view key(g.enc.data() + size_t{u} * codec::kRowKeySize, codec::kRowKeySize);
        if (found[u] && !write_found) continue;
        codec::EncodeRowValue(rows.data() + size_t{u} * rf, rf, st[u], val.data());
        redo[r].Put(key, val);
        if (found[u]) {
          codec::EncodeRowValue(old->data() + size_t{u} * rf, rf, (*old_st)[u], val.data());
          undo[r].Put(key, val);
        } else {
          ++added;
          undo[r].Delete(key);
        }
      }
      new_rows[r] = t->rows[run.shard] + added;
      AddCount(&redo[r], table, new_rows[r]);
      AddCount(&undo[r], table, t->rows[run.shard]);
    }
    return Apply(t, g, &redo, &undo, new_rows);
  }

  Status CommitErase(DiskTable* t, const Grouped& g, const std::vector<float>& rows,
                     const std::vector<RowStats>& st, const std::vector<uint8_t>& found) {
    const int rf = t->spec.row_floats();
    std::string val(codec::RowValueSize(rf), '\0');
    std::vector<ShardBatch> redo(g.runs.size()), undo(g.runs.size());
    std::vector<uint64_t> new_rows(g.runs.size());
    for (size_t r = 0; r < g.runs.size(); ++r) {
      const auto& run = g.runs[r];
      uint64_t removed = 0;
      for (uint32_t u = run.begin; u < run.end; ++u) {
        if (!found[u]) continue;
        std::string_view key(g.enc.data() + size_t{u} * codec::kRowKeySize, codec::kRowKeySize);
        redo[r].Delete(key);
        codec::EncodeRowValue(rows.data() + size_t{u} * rf, rf, st[u], val.data());
        undo[r].Put(key, val);
        ++removed;
      }
      new_rows[r] = t->rows[run.shard] - removed;
      AddCount(&redo[r], t->spec.table_id, new_rows[r]);
      AddCount(&undo[r], t->spec.table_id, t->rows[run.shard]);
    }
    return Apply(t, g, &redo, &undo, new_rows);
  }

  static void AddCount(ShardBatch* b, int table, uint64_t rows) {
    char buf[8];
    std::memcpy(buf, &rows, 8);
    b->Put(codec::CountKey(table), std::string_view(buf, 8));
  }

  Status Apply(DiskTable* t, const Grouped& g, std::vector<ShardBatch>* redo,
               std::vector<ShardBatch>* undo, const std::vector<uint64_t>& new_rows) {
    for (size_t r = 0; r < g.runs.size(); ++r) {
      Status s = shards_[g.runs[r].shard]->Write(&(*redo)[r]);
      if (s.ok()) continue;
      for (size_t q = 0; q < r; ++q) {
        Status u = shards_[g.runs[q].shard]->Write(&(*undo)[q]);
        if (!u.ok())
          return Status::Internal(s.message() + "; undo of shard " + std::to_string(g.runs[q].shard) +
                                  " also failed (" + u.message() + "): store may be inconsistent");
      }
      return s.WithContext("table " + std::to_string(t->spec.table_id) + " (batch not applied)");
    }
    for (size_t r = 0; r < g.runs.size(); ++r) t->rows[g.runs[r].shard] = new_rows[r];
    return Status::OK();
  }

  // Per-thread scratch (calls on a table are serialised, but different
  // tables run on different threads).
  static Grouped& scratch_g() { thread_local Grouped g; return g; }
  static std::vector<float>& scratch_rows() { thread_local std::vector<float> v; return v; }
  static std::vector<RowStats>& scratch_stats() { thread_local std::vector<RowStats> v; return v; }
  static std::vector<uint8_t>& scratch_found() { thread_local std::vector<uint8_t> v; return v; }
  static std::vector<uint8_t>& scratch_need() { thread_local std::vector<uint8_t> v; return v; }

  static constexpr size_t kMinParallelReadKeys = 64;

  RocksDbOptions opt_;
  std::unique_ptr<TaskPool> pool_;  // per-shard reads of one batch
  std::shared_ptr<RocksShared> shared_;
  std::vector<std::unique_ptr<RocksShard>> shards_;  // by virtual shard; null = not held
  mutable std::shared_mutex tables_mu_;
  std::map<int, std::unique_ptr<DiskTable>> tables_;
};

}  // namespace

StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  auto store = std::make_unique<RocksDbStoreImpl>();
  RETURN_IF_ERROR_CTX(store->Init(opt), "opening RocksDB store " + opt.dir);
  return std::unique_ptr<RocksDbStore>(std::move(store));
}

}  // namespace ctrps::storage
