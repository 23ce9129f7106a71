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
};

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

  // Writes rows verbatim (restore from a saved model or checkpoint).
  [[nodiscard]] virtual Status Put(int table, const Key* keys, size_t n, const float* rows,
                                   const RowStats* stats) = 0;

  // Deletes a table and all its rows.
  [[nodiscard]] virtual Status DropTable(int table) = 0;

  // Makes every completed write durable in the backing storage (no-op in memory).
  [[nodiscard]] virtual Status Flush() = 0;

  virtual StatusOr<TableStats> Stats(int table) const = 0;
};

// The in-memory store: a flat hash map per table over a contiguous slab.
std::unique_ptr<EmbeddingStore> NewMemoryStore();

}  // namespace ctrps::storage
