// Shard files: the rows of one virtual shard, every table, as one
// checksummed file. They are what a checkpoint holds for the sparse part of
// a model, whichever store (memory, RocksDB, tiered) held the rows, so a
// checkpoint written by N servers loads on M: the server that owns virtual
// shard v reads shard-NNNN.rows. A full file has every row of the shard; an
// incremental one only the rows updated after `since_step` (RowStats
// last_step), to be applied over the previous checkpoint's rows.
//
// Format (little-endian; persisted: never change the meaning of version 1):
//   header   "CTRPSHD1", u32 version=1, u32 shard, u32 num_virtual_shards,
//            u32 num_tables, u32 step, u32 since_step (0 = full)       32 bytes
//   tables   num_tables x {i32 table_id, i32 dim, i32 slot_floats, u32 0}
//   chunks   {u32 table index, u32 n} then n u64 keys, n RowStats
//            {u32 count, u32 last_step}, n * (dim + slot_floats) f32 rows
//   trailer  "CTRPSEND", u64 total rows, u32 crc32 of every byte before
//            this field, u32 0                                          24 bytes
// Version 2 is version 1 plus, after the chunks, one policy section:
//            {u32 0xFFFFFFFF, u32 bytes} then the shard's admission/eviction
//            state (EmbeddingStore::SavePolicyState). Files of stores
//            without policies are still written as version 1.
// Rows and their optimizer state are one record, so a restored row never
// pairs a weight with another moment's optimizer state.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "storage/embedding_store.h"

namespace ctrps::storage {

// "shard-0007.rows".
std::string ShardFileName(uint32_t shard);

struct ShardFileInfo {
  uint32_t shard = 0;
  std::string name;    // file name inside the directory
  uint64_t bytes = 0;
  uint32_t crc32 = 0;  // of the whole file
  uint64_t rows = 0;
  std::vector<std::pair<int, uint64_t>> table_rows;  // (table id, rows) for tables with rows
};

struct ShardFileHeader {
  uint32_t shard = 0, num_virtual_shards = 0, step = 0, since_step = 0;
  std::vector<TableSpec> tables;  // table_id, dim, slot_floats (init not stored)
  std::string policy_state;       // version 2: the policy section (empty if none)
};

// Writes one file per shard of a set, rows arriving in any order.
class ShardSetWriter {
 public:
  ~ShardSetWriter();
  // Creates dir/shard-NNNN.rows for every shard in `shards` (dir must exist).
  // policy_states, if not empty, has one blob per shard (in `shards` order)
  // for the file's policy section; empty blobs write none.
  static StatusOr<std::unique_ptr<ShardSetWriter>> Open(
      const std::string& dir, uint32_t num_virtual_shards, const std::vector<uint32_t>& shards,
      const std::vector<TableSpec>& tables, uint32_t step, uint32_t since_step,
      const std::vector<std::string>& policy_states = {});
  // Adds one row (row_floats of its table) of `shard` (one of the set).
  [[nodiscard]] Status Add(uint32_t shard, int table, Key key, const float* row,
                           const RowStats& stats);
  // Writes trailers, fsyncs and closes every file. Call once.
  StatusOr<std::vector<ShardFileInfo>> Finish();

 private:
  struct File;
  ShardSetWriter() = default;
  std::vector<std::unique_ptr<File>> files_;  // indexed by position in the set
  std::vector<int32_t> slot_of_shard_;        // shard -> index in files_, or -1
  std::vector<TableSpec> tables_;
  std::vector<int32_t> table_index_;          // table id -> index in tables_, or -1
};

// Writes every row of `store` whose virtual shard (VirtualShardOf(key, V))
// is in `shards`, one file per shard, into dir, on up to `threads` threads
// (each writing its own shards), with each shard's policy state (whole in
// every file, incremental ones included). since_step > 0 keeps only rows
// last updated after that step (an incremental file). Files come back in
// shard order.
StatusOr<std::vector<ShardFileInfo>> WriteStoreShards(const EmbeddingStore& store,
                                                      const std::string& dir,
                                                      uint32_t num_virtual_shards,
                                                      const std::vector<uint32_t>& shards,
                                                      uint32_t step, uint32_t since_step,
                                                      int threads = 1);

// Reads and checks a whole shard file: structure, sizes and the trailer's
// checksum (a Corruption naming the file and byte offset otherwise). fn gets
// each chunk's rows; its errors stop the read. fn may be null (verify only).
using ShardChunkFn = std::function<Status(const TableSpec& table, const Key* keys,
                                          const RowStats* stats, const float* rows, size_t n)>;
// on_header, if set, sees the header before the first chunk (its error
// stops the read).
[[nodiscard]] Status ReadShardFile(
    const std::string& path, ShardFileHeader* header, const ShardChunkFn& fn,
    const std::function<Status(const ShardFileHeader&)>& on_header = nullptr);

// Puts a shard file's rows, and its policy state if it has one, into `store` (its tables already created with
// the same dim and slot_floats; a mismatch is InvalidArgument naming the
// table). Checks the file's shard and shard count against the arguments.
// Unless `verified` (the caller checked the file's checksum just before),
// the whole file is checked first, so a damaged file loads nothing.
[[nodiscard]] Status LoadShardFile(const std::string& path, uint32_t shard,
                                   uint32_t num_virtual_shards, EmbeddingStore* store,
                                   bool verified = false);

}  // namespace ctrps::storage
