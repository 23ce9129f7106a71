// RocksDB settings for one shard, chosen for batched point lookups of small
// fixed-size values (see RocksDbOptions for the overridable ones):
// - no compression: rows are random floats, compression buys nothing and
//   costs CPU on every block read;
// - whole-key bloom filters (10 bits/key ~1% false positives), skipped on
//   the last level (optimize_filters_for_hits) where nearly every lookup hits;
// - index and filter blocks held by the open table readers (all SSTs kept
//   open), so a lookup probes the block cache only for its data block
//   (cache_index_and_filter_blocks = true charges them to the cache instead);
// - data blocks with a hash index (kDataBlockBinaryAndHash) for point seeks,
//   4 buckets per key (util ratio 0.25: few bucket collisions, which fall
//   back to a binary search), and a restart at every key, so a hash hit
//   lands on the key itself and parses nothing else (about 8 bytes per row
//   more than a restart every 4 keys; about 1.3x less CPU per cached
//   lookup, measured on a shared machine, so roughly);
// - a whole-key bloom filter on the memtables (most lookups miss them);
// - WAL off: the store's durability comes from Flush and checkpoints;
// - one block cache and one WriteBufferManager shared by all shards, so
//   memory does not grow with the shard count.
#include "storage/rocksdb_shard.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <vector>

namespace ctrps::storage {

struct RocksShared {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> wbm;
  size_t write_buffer_bytes = 0;
};

std::shared_ptr<RocksShared> NewRocksShared(const RocksDbOptions& opt) {
  auto s = std::make_shared<RocksShared>();
  if (opt.hyper_clock_cache) {
    s->cache = rocksdb::HyperClockCacheOptions(opt.block_cache_bytes, opt.block_size_bytes).MakeSharedCache();
  } else {
    s->cache = rocksdb::NewLRUCache(opt.block_cache_bytes, /*num_shard_bits=*/6);
  }
  s->wbm = std::make_shared<rocksdb::WriteBufferManager>(opt.memtable_bytes);
  size_t shards = opt.shards.empty() ? opt.virtual_shards : opt.shards.size();
  s->write_buffer_bytes =
      std::max<size_t>(size_t{1} << 20, opt.memtable_bytes / std::max<size_t>(1, 2 * shards));
  return s;
}

namespace {
Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  std::string m = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(m);
  if (s.IsCorruption()) return Status::Corruption(m);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(m);
  return Status::IOError(m);
}
}  // namespace

struct ShardBatch::Impl {
  rocksdb::WriteBatch wb;
};
ShardBatch::ShardBatch() : impl_(std::make_unique<Impl>()) {}
ShardBatch::~ShardBatch() = default;
void ShardBatch::Put(std::string_view k, std::string_view v) {
  impl_->wb.Put(rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
}
void ShardBatch::Delete(std::string_view k) { impl_->wb.Delete(rocksdb::Slice(k.data(), k.size())); }
void ShardBatch::DeleteRange(std::string_view b, std::string_view e) {
  impl_->wb.DeleteRange(rocksdb::Slice(b.data(), b.size()), rocksdb::Slice(e.data(), e.size()));
}
size_t ShardBatch::Count() const { return impl_->wb.Count(); }
void ShardBatch::Clear() { impl_->wb.Clear(); }

struct RocksShard::Impl {
  std::shared_ptr<RocksShared> shared;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ReadOptions read;
  rocksdb::WriteOptions write;
  // Scratch for MultiGet, reused across calls (calls on a shard are
  // serialised by the store's per-table lock or are read-only per call).
};

RocksShard::~RocksShard() {
  if (impl_ && impl_->db) {
    rocksdb::Status s = impl_->db->Close();
    (void)s;  // the destructor cannot report; Flush() is the checked path
  }
}

StatusOr<std::unique_ptr<RocksShard>> RocksShard::Open(const std::string& path, uint32_t shard_id,
                                                       const RocksDbOptions& opt,
                                                       std::shared_ptr<RocksShared> shared) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = shared->cache;
  t.block_size = opt.block_size_bytes;
  if (opt.bloom_bits_per_key > 0) {
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(opt.bloom_bits_per_key));
    t.whole_key_filtering = true;
  }
  t.cache_index_and_filter_blocks = opt.cache_index_and_filter_blocks;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.pin_top_level_index_and_filter = true;
  t.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  t.block_restart_interval = 1;  // the hash index lands on the key itself
  t.data_block_hash_table_util_ratio = 0.25;
  t.format_version = 5;

  rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = rocksdb::kNoCompression;
  o.bottommost_compression = rocksdb::kNoCompression;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.optimize_filters_for_hits = opt.optimize_filters_for_hits;
  o.write_buffer_manager = shared->wbm;
  o.write_buffer_size = shared->write_buffer_bytes;
  o.max_write_buffer_number = 2;
  // A whole-key bloom filter on the memtables: a lookup of a key that is
  // not in them skips the skip-list search.
  o.memtable_whole_key_filtering = true;
  o.memtable_prefix_bloom_size_ratio = 0.1;
  o.max_background_jobs = opt.background_jobs;
  o.level_compaction_dynamic_level_bytes = true;
  o.max_open_files = opt.cache_index_and_filter_blocks ? 256 : -1;
  o.keep_log_file_num = 2;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.avoid_flush_during_shutdown = false;  // a clean close persists the memtables

  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, path, &db), "opening RocksDB shard " + path));
  std::unique_ptr<RocksShard> shard(new RocksShard());
  shard->impl_ = std::make_unique<Impl>();
  shard->impl_->shared = std::move(shared);
  shard->impl_->db.reset(db);
  shard->impl_->write.disableWAL = true;
  shard->impl_->read.verify_checksums = false;  // VerifySnapshot checks files; reads stay fast
  shard->id_ = shard_id;
  shard->path_ = path;
  shard->write_fault_ = opt.write_fault_for_test;
  return shard;
}

Status RocksShard::MultiGet(const char* keys, size_t key_size, size_t n, const FoundFn& found) {
  if (n == 0) return Status::OK();
  thread_local std::vector<rocksdb::Slice> slices;
  thread_local std::vector<rocksdb::PinnableSlice> values;
  thread_local std::vector<rocksdb::Status> statuses;
  slices.resize(n);
  if (values.size() < n) values.resize(n);
  statuses.resize(n);
  for (size_t i = 0; i < n; ++i) slices[i] = rocksdb::Slice(keys + i * key_size, key_size);
  impl_->db->MultiGet(impl_->read, impl_->db->DefaultColumnFamily(), n, slices.data(),
                      values.data(), statuses.data(), /*sorted_input=*/true);
  Status first;
  for (size_t i = 0; i < n; ++i) {
    if (statuses[i].ok()) {
      found(i, std::string_view(values[i].data(), values[i].size()));
    } else if (!statuses[i].IsNotFound() && first.ok()) {
      first = FromRocks(statuses[i], "reading shard " + path_);
    }
    values[i].Reset();
  }
  return first;
}

StatusOr<std::string> RocksShard::Get(std::string_view key) {
  std::string v;
  rocksdb::Status s = impl_->db->Get(impl_->read, rocksdb::Slice(key.data(), key.size()), &v);
  RETURN_IF_ERROR(FromRocks(s, "reading shard " + path_));
  return v;
}

Status RocksShard::Write(ShardBatch* batch) {
  if (batch->Count() == 0) return Status::OK();
  if (write_fault_) RETURN_IF_ERROR_CTX(write_fault_(id_), "writing shard " + path_);
  return FromRocks(impl_->db->Write(impl_->write, &batch->impl_->wb), "writing shard " + path_);
}

Status RocksShard::Scan(std::string_view begin, std::string_view end, const ScanFn& fn) const {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(end.data(), end.size());
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro));
  for (it->Seek(rocksdb::Slice(begin.data(), begin.size())); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "scanning shard " + path_);
}

Status RocksShard::Flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(impl_->db->Flush(fo), "flushing shard " + path_);
}

Status RocksShard::CompactRange(std::string_view begin, std::string_view end) {
  RETURN_IF_ERROR(Flush());
  const rocksdb::Slice b(begin.data(), begin.size()), e(end.data(), end.size());
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(impl_->db->CompactRange(co, &b, &e), "compacting shard " + path_);
}

Status RocksShard::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* cp = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(impl_->db.get(), &cp),
                            "checkpoint of shard " + path_));
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  // log_size_for_flush = 0: always flush the memtable, so the checkpoint is
  // SST files only (the WAL is off and would be empty).
  return FromRocks(owned->CreateCheckpoint(dir, 0), "checkpoint of shard " + path_ + " into " + dir);
}

uint64_t RocksShard::DiskBytes() const {
  uint64_t v = 0;
  impl_->db->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &v);
  return v;
}

}  // namespace ctrps::storage
