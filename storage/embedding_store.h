// EmbeddingStore: the rows of the embedding tables held by one process (a
// server's shards, or the single-process trainer's local table).
//
// A row is `dim` embedding floats followed by `slot_floats` optimizer-state
// floats (TableSpec), plus RowStats. The row and its optimizer state are one
// unit: they are always read and written together.
//
// Calls are batched: one Status per batch, never per key. A failing batch
// call is not half-applied where the implementation can guarantee it (the
// memory store always; see each implementation). Missing rows are created
// on first access with RowInitializer, so a row's initial value depends only
// on (key, seed), never on arrival order, worker count or sharding.
//
// Thread safety: implementations are safe for concurrent calls on different
// tables; calls on one table are serialised internally.
//
// Durability: the disk stores (RocksDB, tiered) run RocksDB with its
// write-ahead log OFF. A completed write is durable only after Flush() or
// Snapshot() returns OK, or after the store is closed cleanly; a crash loses
// the writes since the last of these. Checkpoints (Snapshot) are the
// durability mechanism, not the WAL.
//
// Implementations (factories in storage/store_factory.h): memory, RocksDB
// (one RocksDB instance per virtual shard, routed by VirtualShardOf), and
// tiered (a bounded-bytes DRAM tier over the RocksDB store). Admission and
// eviction policies wrap any of them (storage/admission.h).
//
// Ownership: the store owns its rows; Lookup/Modify/Scan callers own the
// key and output buffers, which are not retained after the call returns.
// A row pointer passed to a RowFn or ScanFn is valid only during that call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "storage/row_init.h"

namespace ctrps::storage {

struct TableSpec {
  int table_id = 0;     // 0..255, the top 8 bits of the table's keys
  int dim = 0;          // embedding floats per row (the part the model sees)
  int slot_floats = 0;  // optimizer-state floats per row, stored after the embedding
  RowInitOptions init;  // how new rows are initialised
  int row_floats() const { return dim + slot_floats; }
  Status Validate() const;
};

struct RowStats {
  uint32_t count = 0;      // times the row was updated
  uint32_t last_step = 0;  // training step of the last update
};

struct TableStats {
  int table_id = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;           // approximate memory or disk bytes used by rows
  uint64_t lookups = 0;         // keys looked up
  uint64_t created = 0;         // rows created on miss
  // Tiered store only (0 elsewhere).
  uint64_t dram_rows = 0;       // rows resident in the DRAM tier
  uint64_t dram_hits = 0;       // looked-up or modified keys found in DRAM
  uint64_t dram_misses = 0;     // ... read from the disk tier (or created)
  uint64_t evictions = 0;       // rows evicted from DRAM to make room
  uint64_t writebacks = 0;      // dirty rows written to disk (eviction or flush)
  // Admission and eviction policy (storage/admission.h; 0 without one).
  uint64_t admitted = 0;        // keys admitted (a row was created for them)
  uint64_t rejected_lookups = 0;  // lookups of not-admitted keys (served their initial value)
  uint64_t dropped_updates = 0;   // updates of not-admitted keys, dropped
  uint64_t evicted_stale = 0;     // rows removed by Evict: unseen for too many steps
  uint64_t evicted_rare = 0;      // rows removed by Evict: seen too few times
};

// OK if a Lookup of `out_floats` floats fits rows of `row_floats`, else
// InvalidArgument naming the table (every store's Lookup checks this).
[[nodiscard]] Status CheckLookupWidth(int table, int out_floats, int row_floats);

// Adds every counter of `s` (rows and bytes included) to *total; table_id
// is kept. For one table's stats over several stores (shards, servers).
void AddTableStats(const TableStats& s, TableStats* total);

class EmbeddingStore {
 public:
  virtual ~EmbeddingStore() = default;

  // Registers a table. Re-creating an existing table with the same spec is a
  // no-op; a different spec is an error.
  [[nodiscard]] virtual Status CreateTable(const TableSpec& spec) = 0;
  virtual std::vector<TableSpec> Tables() const = 0;

  // Copies the first `out_floats` floats (<= row_floats) of each key's row
  // into out[i * out_floats ...]. Keys may repeat. A missing row is created
  // if `create_missing`; otherwise its initial value is returned and nothing
  // is stored (evaluation must not grow the tables).
  [[nodiscard]] virtual Status Lookup(int table, const Key* keys, size_t n, float* out,
                                      int out_floats, bool create_missing) = 0;

  // Read-modify-write: calls fn(i, row) with a mutable full row (row_floats)
  // for each key in order, creating missing rows, then stores the rows and
  // bumps their stats (count, last_step = step). Keys must be unique.
  using RowFn = std::function<void(size_t i, float* row)>;
  [[nodiscard]] virtual Status Modify(int table, const Key* keys, size_t n, uint32_t step,
                                      const RowFn& fn) = 0;

  // Calls fn(key, row, stats) for every row of the table, in no fixed order
  // (memory) or key order (disk stores). fn returns false to stop early.
  using ScanFn = std::function<bool(Key key, const float* row, const RowStats& stats)>;
  [[nodiscard]] virtual Status Scan(int table, const ScanFn& fn) const = 0;

  // Scan restricted to rows whose VirtualShardOf(key, num_virtual_shards)
  // has wanted[shard] != 0 (wanted.size() == num_virtual_shards). The
  // default filters a full Scan; the disk stores read only the wanted
  // shards' instances when they are sharded the same way.
  [[nodiscard]] virtual Status ScanShards(int table, uint32_t num_virtual_shards,
                                          const std::vector<uint8_t>& wanted,
                                          const ScanFn& fn) const;

  // Writes rows verbatim (restore from a saved model or checkpoint).
  [[nodiscard]] virtual Status Put(int table, const Key* keys, size_t n, const float* rows,
                                   const RowStats* stats) = 0;

  // Replaces every row of table new_spec.table_id by a row of new_spec's
  // geometry (a new width, e.g. a compression stage's change of basis):
  // map(key, old embedding (old dim floats), new embedding (new_spec.dim
  // floats)); the optimizer state restarts from new_spec's initial values;
  // row stats are kept. The default streams the rows through a scratch file
  // in scratch_dir (removed afterwards), so memory stays within the store's
  // own bounds; on failure the table may be left empty (callers rewrite from
  // a saved model or checkpoint, never from the only copy).
  using RowMapFn = std::function<void(Key key, const float* old_row, float* new_row)>;
  [[nodiscard]] virtual Status RewriteTable(const TableSpec& new_spec, const RowMapFn& map,
                                            const std::string& scratch_dir);

  // Changes rows in place, table geometry unchanged (a compression stage's
  // pruning): fn(key, row, out) sees each full row (dim + slot floats) and
  // returns true after writing the changed row to `out`; those rows are put
  // back with their stats. Streams the changed rows through a scratch file
  // in scratch_dir, like RewriteTable. Returns the number of rows changed.
  using RowUpdateFn = std::function<bool(Key key, const float* row, float* out)>;
  [[nodiscard]] virtual StatusOr<uint64_t> UpdateRows(int table, const RowUpdateFn& fn,
                                                      const std::string& scratch_dir);

  // Deletes a table and all its rows.
  [[nodiscard]] virtual Status DropTable(int table) = 0;

  // Makes every completed write durable in the backing storage (no-op in memory).
  [[nodiscard]] virtual Status Flush() = 0;

  virtual StatusOr<TableStats> Stats(int table) const = 0;

  // present[i] = 1 if key i has a stored row, else 0. Creates nothing.
  [[nodiscard]] virtual Status Contains(int table, const Key* keys, size_t n, uint8_t* present) {
    return Status::Unimplemented("Contains is not supported by this store");
  }

  // Deletes the rows of `keys` (absent keys are ignored). Atomic like Put.
  [[nodiscard]] virtual Status Erase(int table, const Key* keys, size_t n) {
    return Status::Unimplemented("Erase is not supported by this store");
  }

  // Removes rows by policy: rows with last_step + max_unseen_steps < now_step
  // (if max_unseen_steps > 0) or count < min_count (if min_count > 0). Done
  // with Scan + Erase, so every store supports it; returns rows removed.
  struct EvictPolicy {
    uint32_t now_step = 0;
    uint32_t max_unseen_steps = 0;  // 0 = no staleness eviction
    uint32_t min_count = 0;         // 0 = no rarity eviction
  };
  virtual StatusOr<uint64_t> Evict(int table, const EvictPolicy& policy);

  // The admission/eviction state (storage/admission.h) of virtual shard
  // `shard`, as an opaque blob for checkpoints (shard_file.h stores it with
  // the shard's rows); empty when the store keeps none, as every plain store.
  virtual StatusOr<std::string> SavePolicyState(uint32_t shard) const { return std::string(); }
  // Restores what SavePolicyState gave. A store without policies ignores it
  // (the policies were turned off since the checkpoint).
  [[nodiscard]] virtual Status LoadPolicyState(uint32_t shard, const std::string& blob) {
    return Status::OK();
  }

  // Writes a consistent point-in-time copy of every table to `dir` (which
  // must not exist): disk tiers flushed, one RocksDB checkpoint (hard links)
  // per virtual shard, then MANIFEST (file names, sizes, crc32) written last
  // via tmp + rename, so a snapshot is either whole or absent. Open one with
  // OpenStoreFromSnapshot and check one with VerifySnapshot
  // (storage/snapshot.h). The memory store does not support it.
  [[nodiscard]] virtual Status Snapshot(const std::string& dir) {
    return Status::Unimplemented("Snapshot is not supported by this store");
  }
};

// The in-memory store: a flat hash map per table over a contiguous slab.
std::unique_ptr<EmbeddingStore> NewMemoryStore();

}  // namespace ctrps::storage
