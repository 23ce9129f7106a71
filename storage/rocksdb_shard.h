// One virtual shard's RocksDB instance (private to storage/): the only file
// besides rocksdb_shard.cc that knows the shard is RocksDB, with rocksdb::
// types kept behind pimpl so nothing outside storage/ ever sees them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/store_options.h"

namespace ctrps::storage {

// Objects shared by all shards of a store: block cache, write buffer
// manager, the background thread pool's Env.
struct RocksShared;
std::shared_ptr<RocksShared> NewRocksShared(const RocksDbOptions& opt);

// An atomic group of writes to one shard.
class ShardBatch {
 public:
  ShardBatch();
  ~ShardBatch();
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  void DeleteRange(std::string_view begin, std::string_view end);
  size_t Count() const;
  void Clear();

 private:
  friend class RocksShard;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class RocksShard {
 public:
  ~RocksShard();
  // Opens (creating if missing) the DB at `path`.
  static StatusOr<std::unique_ptr<RocksShard>> Open(const std::string& path, uint32_t shard_id,
                                                    const RocksDbOptions& opt,
                                                    std::shared_ptr<RocksShared> shared);

  uint32_t id() const { return id_; }
  const std::string& path() const { return path_; }

  // Batched point reads of n keys sorted ascending (bytewise), each
  // `key_size` bytes at keys + i * key_size. found(i, value) is called for
  // each key present, in order. One RocksDB MultiGet.
  using FoundFn = std::function<void(size_t i, std::string_view value)>;
  [[nodiscard]] Status MultiGet(const char* keys, size_t key_size, size_t n, const FoundFn& found);
  // A single read; NotFound if absent.
  StatusOr<std::string> Get(std::string_view key);
  // Applies the batch atomically (WAL off: see EmbeddingStore's contract).
  [[nodiscard]] Status Write(ShardBatch* batch);
  // Calls fn(key, value) for keys in [begin, end) in key order; fn returns
  // false to stop.
  using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;
  [[nodiscard]] Status Scan(std::string_view begin, std::string_view end, const ScanFn& fn) const;
  [[nodiscard]] Status Flush();
  // Flushes, then compacts the keys in [begin, end) down to the last
  // level: a range deletion's space is returned now, not at some later
  // compaction (a dropped table's files go).
  [[nodiscard]] Status CompactRange(std::string_view begin, std::string_view end);
  // Hard-link checkpoint into `dir` (must not exist); flushes memtables first.
  [[nodiscard]] Status Checkpoint(const std::string& dir);
  // Approximate bytes on disk (live SST files).
  uint64_t DiskBytes() const;

 private:
  RocksShard() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint32_t id_ = 0;
  std::string path_;
  std::function<Status(uint32_t)> write_fault_;
};

}  // namespace ctrps::storage
