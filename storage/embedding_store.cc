// Shared pieces of the stores: spec validation and encoding, option
// validation, the generic Evict, and the factories.
#include <cinttypes>
#include <cstring>
#include <sstream>

#include "storage/embedding_store.h"
#include "storage/rocksdb_store.h"
#include "storage/row_codec.h"
#include "storage/snapshot.h"
#include "storage/store_factory.h"

namespace ctrps::storage {

Status TableSpec::Validate() const {
  if (table_id < 0 || table_id >= kMaxTables)
    return Status::InvalidArgument("table_id " + std::to_string(table_id) + " not in [0, " +
                                   std::to_string(kMaxTables) + ")");
  if (dim <= 0 || dim > 65536)
    return Status::InvalidArgument("table " + std::to_string(table_id) + ": dim " +
                                   std::to_string(dim) + " not in [1, 65536]");
  if (slot_floats < 0 || slot_floats > 4 * 65536 + 16)
    return Status::InvalidArgument("table " + std::to_string(table_id) + ": slot_floats " +
                                   std::to_string(slot_floats) + " out of range");
  if (init.zero_prefix < 0 || init.zero_prefix > dim)
    return Status::InvalidArgument("table " + std::to_string(table_id) + ": zero_prefix " +
                                   std::to_string(init.zero_prefix) + " not in [0, dim]");
  return Status::OK();
}

Status EmbeddingStore::ScanShards(int table, uint32_t num_virtual_shards,
                                  const std::vector<uint8_t>& wanted, const ScanFn& fn) const {
  if (wanted.size() != num_virtual_shards)
    return Status::InvalidArgument("ScanShards: " + std::to_string(wanted.size()) +
                                   " flags for " + std::to_string(num_virtual_shards) + " shards");
  return Scan(table, [&](Key key, const float* row, const RowStats& stats) {
    if (!wanted[VirtualShardOf(key, num_virtual_shards)]) return true;
    return fn(key, row, stats);
  });
}

StatusOr<uint64_t> EmbeddingStore::Evict(int table, const EvictPolicy& p) {
  std::vector<Key> victims;
  RETURN_IF_ERROR(Scan(table, [&](Key k, const float*, const RowStats& s) {
    bool stale = p.max_unseen_steps > 0 && uint64_t{s.last_step} + p.max_unseen_steps < p.now_step;
    bool rare = p.min_count > 0 && s.count < p.min_count;
    if (stale || rare) victims.push_back(k);
    return true;
  }));
  if (!victims.empty()) RETURN_IF_ERROR(Erase(table, victims.data(), victims.size()));
  return static_cast<uint64_t>(victims.size());
}

namespace codec {
namespace {
uint32_t Bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
float FromBits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
}  // namespace

std::string EncodeSpec(const TableSpec& s) {
  std::ostringstream o;
  o << "v1 " << s.table_id << " " << s.dim << " " << s.slot_floats << " " << s.init.seed << " "
    << Bits(s.init.scale) << " " << s.init.zero_prefix << " " << Bits(s.init.slot_value) << " "
    << s.init.slot_value_count;
  return o.str();
}

StatusOr<TableSpec> DecodeSpec(const std::string& text) {
  std::istringstream in(text);
  std::string v;
  TableSpec s;
  uint32_t scale = 0, slot_value = 0;
  if (!(in >> v >> s.table_id >> s.dim >> s.slot_floats >> s.init.seed >> scale >>
        s.init.zero_prefix >> slot_value >> s.init.slot_value_count) || v != "v1")
    return Status::Corruption("malformed stored table spec '" + text + "'");
  s.init.scale = FromBits(scale);
  s.init.slot_value = FromBits(slot_value);
  RETURN_IF_ERROR_CTX(s.Validate(), "stored table spec");
  return s;
}
}  // namespace codec

Status RocksDbOptions::Validate() const {
  if (dir.empty()) return Status::InvalidArgument("rocksdb store: dir is empty");
  if (virtual_shards == 0 || virtual_shards > 65536)
    return Status::InvalidArgument("rocksdb store: virtual_shards " + std::to_string(virtual_shards) +
                                   " not in [1, 65536]");
  for (uint32_t s : shards)
    if (s >= virtual_shards)
      return Status::InvalidArgument("rocksdb store: shard " + std::to_string(s) + " not in [0, " +
                                     std::to_string(virtual_shards) + ")");
  if (block_cache_bytes < (size_t{1} << 20))
    return Status::InvalidArgument("rocksdb store: block cache below 1 MiB");
  if (memtable_bytes < (size_t{1} << 20))
    return Status::InvalidArgument("rocksdb store: memtable budget below 1 MiB");
  if (bloom_bits_per_key < 0 || bloom_bits_per_key > 64)
    return Status::InvalidArgument("rocksdb store: bloom_bits_per_key not in [0, 64]");
  if (block_size_bytes < 512 || block_size_bytes > (size_t{4} << 20))
    return Status::InvalidArgument("rocksdb store: block_size_bytes not in [512, 4 MiB]");
  if (background_jobs < 1) return Status::InvalidArgument("rocksdb store: background_jobs < 1");
  return Status::OK();
}

Status TieredOptions::Validate() const {
  RETURN_IF_ERROR(disk.Validate());
  if (dram_budget_bytes < (size_t{64} << 10))
    return Status::InvalidArgument("tiered store: DRAM budget below 64 KiB");
  return Status::OK();
}

Status StoreOptions::Validate() const {
  RETURN_IF_ERROR(policy.Validate());
  if (kind == Kind::kMemory) return Status::OK();
  TieredOptions t;
  t.disk = rocksdb;
  t.dram_budget_bytes = dram_budget_bytes;
  return kind == Kind::kTiered ? t.Validate() : rocksdb.Validate();
}

StatusOr<std::unique_ptr<EmbeddingStore>> OpenRocksDbStore(const RocksDbOptions& opt) {
  ASSIGN_OR_RETURN(auto s, RocksDbStore::Open(opt));
  return std::unique_ptr<EmbeddingStore>(std::move(s));
}

namespace {
StatusOr<std::unique_ptr<EmbeddingStore>> OpenBaseStore(const StoreOptions& opt) {
  switch (opt.kind) {
    case StoreOptions::Kind::kMemory: return NewMemoryStore();
    case StoreOptions::Kind::kRocksDb: return OpenRocksDbStore(opt.rocksdb);
    case StoreOptions::Kind::kTiered: {
      TieredOptions t;
      t.disk = opt.rocksdb;
      t.dram_budget_bytes = opt.dram_budget_bytes;
      return OpenTieredStore(t);
    }
  }
  return Status::InvalidArgument("unknown store kind");
}
}  // namespace

StatusOr<std::unique_ptr<EmbeddingStore>> OpenStore(const StoreOptions& opt) {
  RETURN_IF_ERROR(opt.Validate());
  ASSIGN_OR_RETURN(auto base, OpenBaseStore(opt));
  return NewPolicyStore(std::move(base), opt.policy);
}

StatusOr<std::unique_ptr<EmbeddingStore>> OpenStoreFromSnapshot(const std::string& snapshot_dir,
                                                                const StoreOptions& opt) {
  if (opt.kind == StoreOptions::Kind::kMemory)
    return Status::InvalidArgument("the memory store cannot open a snapshot");
  RETURN_IF_ERROR(opt.Validate());
  RETURN_IF_ERROR_CTX(RestoreSnapshotFiles(snapshot_dir, opt.rocksdb.dir),
                      "opening snapshot " + snapshot_dir);
  return OpenStore(opt);
}

Status CheckLookupWidth(int table, int out_floats, int row_floats) {
  if (out_floats >= 0 && out_floats <= row_floats) return Status::OK();
  return Status::InvalidArgument("lookup of " + std::to_string(out_floats) + " floats from table " +
                                 std::to_string(table) + " whose rows have " +
                                 std::to_string(row_floats));
}

void AddTableStats(const TableStats& s, TableStats* total) {
  total->rows += s.rows;
  total->bytes += s.bytes;
  total->lookups += s.lookups;
  total->created += s.created;
  total->dram_rows += s.dram_rows;
  total->dram_hits += s.dram_hits;
  total->dram_misses += s.dram_misses;
  total->evictions += s.evictions;
  total->writebacks += s.writebacks;
  total->admitted += s.admitted;
  total->rejected_lookups += s.rejected_lookups;
  total->dropped_updates += s.dropped_updates;
  total->evicted_stale += s.evicted_stale;
  total->evicted_rare += s.evicted_rare;
}

}  // namespace ctrps::storage
