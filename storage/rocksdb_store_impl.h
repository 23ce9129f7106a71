// The RocksDB store's implementation class (private to storage/; see
// rocksdb_store.h for the contract). Its members are defined in three files,
// one purpose each:
//   rocksdb_store.cc  opening, table specs and counts, flush, stats, snapshot;
//   rocksdb_rows.cc   the row calls (Lookup, Modify, Put, Erase, Scan, ...);
//   rocksdb_batch.cc  a batch's keys grouped by shard, the per-shard
//                     MultiGets, and the multi-shard write with its undo.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/task_pool.h"
#include "storage/rocksdb_shard.h"
#include "storage/rocksdb_store.h"
#include "storage/written_keys.h"

namespace ctrps::storage {

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
  Status Init(const RocksDbOptions& opt);
  ~RocksDbStoreImpl() override = default;  // shards close (and persist memtables) themselves

  // rocksdb_store.cc
  Status CreateTable(const TableSpec& spec) override;
  std::vector<TableSpec> Tables() const override;
  Status DropTable(int table) override;
  Status Flush() override;
  StatusOr<TableStats> Stats(int table) const override;
  Status Snapshot(const std::string& dir) override;
  uint32_t virtual_shards() const override { return opt_.virtual_shards; }

  // rocksdb_rows.cc
  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats,
                bool create_missing) override;
  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override;
  Status Scan(int table, const ScanFn& fn) const override;
  Status ScanShards(int table, uint32_t num_virtual_shards, const std::vector<uint8_t>& wanted,
                    const ScanFn& fn) const override;
  Status ScanShard(int table, uint32_t shard, const ScanFn& fn) const override;
  Status Put(int table, const Key* keys, size_t n, const float* in_rows,
             const RowStats* in_stats) override;
  Status Contains(int table, const Key* keys, size_t n, uint8_t* present) override;
  Status Erase(int table, const Key* keys, size_t n) override;
  Status ReadRows(int table, const Key* keys, size_t n, float* out_rows, RowStats* out_stats,
                  uint8_t* out_found) override;
  Status WriteRows(int table, const Key* keys, size_t n, const float* rows,
                   const RowStats* stats) override;

 private:
  static Status SameShape(const TableSpec& old, const TableSpec& spec);
  // Reads the table specs and row counts stored in shard s.
  Status LoadMeta(uint32_t s);
  StatusOr<DiskTable*> Get(int table) const;
  // The rows of `table` in held shard s, in key order; *stop is set when fn
  // returns false.
  Status ScanOneShard(const DiskTable& t, uint32_t s, const ScanFn& fn, bool* stop) const;

  // rocksdb_batch.cc
  Status Group(const Key* keys, size_t n, Grouped* g) const;
  // One MultiGet per shard run, the runs spread over the read pool (each
  // run fills only its own range of rows/st/found, so the result does not
  // depend on the threads). need (optional): read only keys u with
  // need[u] != 0; the others are reported not found.
  Status ReadUnique(const Grouped& g, int rf, std::vector<float>* rows, std::vector<RowStats>* st,
                    std::vector<uint8_t>* found, const std::vector<uint8_t>* need = nullptr);
  // bulk (Put): keys that the table's WrittenKeys filter proves absent are
  // not read; an empty table starts a filter. Otherwise (the tiered
  // store's write-backs) the filter is dropped: the bulk load is over.
  Status PutLocked(DiskTable* t, const Key* keys, size_t n, const float* in_rows,
                   const RowStats* in_stats, bool bulk);
  // Writes the rows of g (all, or only the not-found ones) plus each
  // shard's new row count, shard by shard; undoes written shards if a later
  // one fails. old/old_st: the found rows' previous values (may be null
  // when found rows are not written).
  Status Commit(DiskTable* t, const Grouped& g, const std::vector<float>& rows,
                const std::vector<RowStats>& st, const std::vector<uint8_t>& found, bool write_found,
                const std::vector<float>* old, const std::vector<RowStats>* old_st = nullptr);
  Status CommitErase(DiskTable* t, const Grouped& g, const std::vector<float>& rows,
                     const std::vector<RowStats>& st, const std::vector<uint8_t>& found);
  static void AddCount(ShardBatch* b, int table, uint64_t rows);
  Status Apply(DiskTable* t, const Grouped& g, std::vector<ShardBatch>* redo,
               std::vector<ShardBatch>* undo, const std::vector<uint64_t>& new_rows);

  // Per-thread scratch of one batch call (calls on a table are serialised,
  // but different tables run on different threads).
  struct Scratch {
    Grouped g;
    std::vector<float> rows;    // the unique keys' rows, row_floats each
    std::vector<RowStats> st;
    std::vector<uint8_t> found;  // found[u]: key u has a stored row
    std::vector<uint8_t> need;   // Put's keys to read (see PutLocked)
  };
  static Scratch& scratch() { thread_local Scratch s; return s; }
  // Groups a batch's keys into the thread's scratch and reads every unique
  // key's stored row (ReadUnique): the start of each row call.
  StatusOr<Scratch*> GroupAndRead(const Key* keys, size_t n, int rf);

  static constexpr size_t kMinParallelReadKeys = 64;

  RocksDbOptions opt_;
  std::unique_ptr<TaskPool> pool_;  // per-shard reads of one batch
  std::shared_ptr<RocksShared> shared_;
  std::vector<std::unique_ptr<RocksShard>> shards_;  // by virtual shard; null = not held
  mutable std::shared_mutex tables_mu_;
  std::map<int, std::unique_ptr<DiskTable>> tables_;
};

}  // namespace ctrps::storage
