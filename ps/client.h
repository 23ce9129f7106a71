// The worker's view of the parameter servers: pull embedding rows and push
// their gradients, a whole step's tables at once (so the distributed client
// can send one message per server per step, never one per key).
//
// The local client serves rows from an EmbeddingStore in the same process;
// the remote client (ps/remote_client.h) talks to parameter servers over a
// Transport and implements the same calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "ps/sparse_optimizer.h"
#include "storage/embedding_store.h"
#include "storage/shard_file.h"

namespace ctrps::ps {

// One table's part of a pull or push. Keys are unique within a slice.
struct TableSlice {
  int table = 0;
  const Key* keys = nullptr;
  size_t n = 0;
  // n * width floats, row-major: pull writes rows here, push reads gradients.
  float* data = nullptr;
};

// The geometry and update rule of one table, known to clients and servers.
struct TableConfig {
  int table_id = 0;
  int dim = 0;                        // floats a worker sees per row
  float init_scale = 0.01f;           // new rows: embedding uniform in [-scale, scale]
  int zero_prefix = 0;                // new rows: leading floats that start at 0
  uint64_t init_seed = 0;
  SparseOptimizerOptions optimizer;
};

// The stored row layout of a table: its floats, the optimizer's slots, and
// the initial values (the optimizer may set the slots' start).
inline storage::TableSpec TableSpecOf(const TableConfig& tc, const SparseOptimizer& optimizer) {
  storage::TableSpec spec;
  spec.table_id = tc.table_id;
  spec.dim = tc.dim;
  spec.slot_floats = optimizer.SlotFloats(tc.dim);
  spec.init.seed = tc.init_seed;
  spec.init.scale = tc.init_scale;
  spec.init.zero_prefix = tc.zero_prefix;
  optimizer.ConfigureInit(&spec.init);
  return spec;
}

struct RowBasisChange;  // ps/table_rewrite.h
struct EntrySet;        // ps/entry_select.h

class EmbeddingClient {
 public:
  virtual ~EmbeddingClient() = default;
  // Declares the tables (idempotent; all workers declare the same set).
  [[nodiscard]] virtual Status DeclareTables(const std::vector<TableConfig>& tables) = 0;
  // Fills each slice's data with the rows of its keys. For training, missing
  // rows are created; otherwise (evaluation) their initial values are
  // returned and the tables do not grow.
  [[nodiscard]] virtual Status Pull(const std::vector<TableSlice>& slices, bool training) = 0;
  // Applies each slice's gradients with its table's sparse optimizer. `step`
  // is the global training step (recorded in row stats).
  [[nodiscard]] virtual Status Push(const std::vector<TableSlice>& slices, uint32_t step) = 0;
  virtual int Width(int table) const = 0;

  // Starts a pull whose rows are needed only at FinishPull, so servers look
  // them up while the caller computes. At most one pull is in flight, and
  // its slices' buffers must stay untouched until FinishPull. By default
  // (local client) the pull happens here and FinishPull does nothing.
  [[nodiscard]] virtual Status StartPull(const std::vector<TableSlice>& slices, bool training) {
    return Pull(slices, training);
  }
  [[nodiscard]] virtual Status FinishPull() { return Status::OK(); }
  // Waits until every push so far has been applied (asynchronous modes).
  [[nodiscard]] virtual Status Flush() { return Status::OK(); }
  // Tells the servers this worker is finished (remote clients; after it,
  // only the destructor may be called).
  [[nodiscard]] virtual Status Shutdown() { return Status::OK(); }

  // Streams every row of a table (its `dim` floats) to fn, in no fixed
  // order; fn returns false to stop. For saving and exporting models.
  using RowVisitor = std::function<bool(Key key, const float* row)>;
  [[nodiscard]] virtual Status ScanRows(int table, const RowVisitor& fn) = 0;
  // Writes rows (dim floats each) verbatim; their optimizer state restarts
  // from its initial value. For loading saved models.
  [[nodiscard]] virtual Status LoadRows(int table, const Key* keys, size_t n,
                                        const float* rows) = 0;

  // Checkpoints (worker/ckpt). The rows of every virtual shard, with their
  // optimizer state and stats, go to dir/shard-NNNN.rows (storage/
  // shard_file.h), each written by the process that holds the shard; with
  // since_step > 0 only rows updated after that step (an incremental
  // checkpoint). Every push sent before the call is applied first. Returns
  // the files written, in shard order.
  [[nodiscard]] virtual StatusOr<std::vector<storage::ShardFileInfo>> SaveShards(
      const std::string& dir, uint32_t step, uint32_t since_step) = 0;
  // Loads the shard files of each directory in order (a full checkpoint,
  // then its increments) into the declared tables, each shard by the
  // process that holds it now (any number of servers). Files must have been
  // verified. Rows already in the tables are dropped first.
  [[nodiscard]] virtual Status LoadShards(const std::vector<std::string>& dirs) = 0;
  // Compression: replaces every row of table new_config.table_id by
  // `change` applied to it (ps/table_rewrite.h), on every shard where the
  // rows live, streaming through the store (scratch files under
  // scratch_dir); the table's optimizer state restarts and its geometry
  // becomes new_config. Every push sent before is applied first. With
  // change == null, only this client's view of the table changes (the other
  // workers of a job, after one worker rewrote it).
  [[nodiscard]] virtual Status RewriteTable(const TableConfig& new_config,
                                            const RowBasisChange* change,
                                            const std::string& scratch_dir) = 0;
  // Compression (DeepLight): the kHistogramBuckets-bucket histogram of the
  // magnitude bits of the entries of `set` (ps/entry_select.h; level 0 by
  // the high 16 bits, level 1 the low 16 bits under `prefix`), summed over
  // every shard. Every push sent before is applied first.
  [[nodiscard]] virtual StatusOr<std::vector<uint64_t>> EntryHistogram(const EntrySet& set,
                                                                       int level,
                                                                       uint32_t prefix) = 0;
  // Zeroes every entry of `set` whose magnitude bits are <= max_bits, where
  // it lives (and, with reset_state, its optimizer state, so zero gradients
  // keep it at 0). Returns the entries it zeroed that were not already 0.
  [[nodiscard]] virtual StatusOr<uint64_t> PruneEntries(const EntrySet& set, uint32_t max_bits,
                                                        bool reset_state,
                                                        const std::string& scratch_dir) = 0;
  // Compression (UMEC's removed fields): deletes these tables wherever
  // their rows live (every server's shards; a disk store's space returned
  // by compaction) and forgets them. With send == false only this client's
  // view changes (the other workers of a job, after one worker dropped
  // them). Every push sent before is applied first.
  [[nodiscard]] virtual Status DropTables(const std::vector<int>& tables, bool send) = 0;
  // V: the number of virtual shards keys are routed by.
  virtual uint32_t NumVirtualShards() const = 0;
  // The store counters of every table (rows, lookups, rows created, DRAM
  // tier hits and evictions, admission and eviction decisions), each summed
  // over all shards and servers, in table id order. Every push sent before
  // the call is applied first.
  [[nodiscard]] virtual StatusOr<std::vector<storage::TableStats>> TableStats() = 0;
};

// Serves tables from `store` in this process. The store must outlive it.
// num_virtual_shards: how checkpoints split its rows (storage.virtual_shards).
std::unique_ptr<EmbeddingClient> NewLocalClient(storage::EmbeddingStore* store,
                                                uint32_t num_virtual_shards = 16);

}  // namespace ctrps::ps
