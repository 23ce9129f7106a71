// The RocksDB store: opening (one RocksDB instance per held virtual shard,
// each shard's table specs and row counts), table creation and removal,
// flush, stats and snapshots. Row calls: rocksdb_rows.cc; batched per-shard
// reads and writes: rocksdb_batch.cc.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <unistd.h>

#include "storage/row_codec.h"
#include "storage/rocksdb_store_impl.h"
#include "storage/snapshot.h"

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

Status RocksDbStoreImpl::Init(const RocksDbOptions& opt) {
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

Status RocksDbStoreImpl::SameShape(const TableSpec& old, const TableSpec& spec) {
  if (old.dim != spec.dim || old.slot_floats != spec.slot_floats)
    return Status::FailedPrecondition("table " + std::to_string(spec.table_id) + " exists with dim " +
                                      std::to_string(old.dim) + "+" + std::to_string(old.slot_floats) +
                                      " slots, asked for " + std::to_string(spec.dim) + "+" +
                                      std::to_string(spec.slot_floats));
  return Status::OK();
}

// Reads the table specs and row counts stored in shard s.
Status RocksDbStoreImpl::LoadMeta(uint32_t s) {
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

StatusOr<DiskTable*> RocksDbStoreImpl::Get(int table) const {
  std::shared_lock lock(tables_mu_);
  auto it = tables_.find(table);
  if (it == tables_.end())
    return Status::NotFound("table " + std::to_string(table) + " was never created");
  return it->second.get();
}

Status RocksDbStoreImpl::CreateTable(const TableSpec& spec) {
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

std::vector<TableSpec> RocksDbStoreImpl::Tables() const {
  std::shared_lock lock(tables_mu_);
  std::vector<TableSpec> out;
  for (const auto& [id, t] : tables_) out.push_back(t->spec);
  return out;
}

Status RocksDbStoreImpl::DropTable(int table) {
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
    // The table's space goes back now: no tombstones left for later.
    RETURN_IF_ERROR_CTX(sh->CompactRange(codec::TableBegin(table), codec::TableEnd(table)),
                        "dropping table " + std::to_string(table));
  }
  tables_.erase(it);
  return Status::OK();
}

Status RocksDbStoreImpl::Flush() {
  for (auto& sh : shards_)
    if (sh) RETURN_IF_ERROR(sh->Flush());
  return Status::OK();
}

StatusOr<TableStats> RocksDbStoreImpl::Stats(int table) const {
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

Status RocksDbStoreImpl::Snapshot(const std::string& dir) {
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

StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  auto store = std::make_unique<RocksDbStoreImpl>();
  RETURN_IF_ERROR_CTX(store->Init(opt), "opening RocksDB store " + opt.dir);
  return std::unique_ptr<RocksDbStore>(std::move(store));
}

}  // namespace ctrps::storage
