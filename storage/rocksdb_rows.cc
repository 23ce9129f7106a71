// The RocksDB store's row calls: each groups its keys by shard (one
// MultiGet and one write batch per shard touched, rocksdb_batch.cc) under
// the table's lock; Scan and ScanShards read the shards' instances in shard
// order, each in key order.
#include <algorithm>
#include <string>

#include "storage/row_codec.h"
#include "storage/rocksdb_store_impl.h"

namespace ctrps::storage {

Status RocksDbStoreImpl::Lookup(int table, const Key* keys, size_t n, float* out, int out_floats,
                                bool create_missing) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  const int rf = t->spec.row_floats();
  RETURN_IF_ERROR(CheckLookupWidth(table, out_floats, rf));
  std::lock_guard lock(t->mu);
  ASSIGN_OR_RETURN(Scratch* s, GroupAndRead(keys, n, rf));
  auto& [g, rows, st, found, need] = *s;
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

Status RocksDbStoreImpl::Modify(int table, const Key* keys, size_t n, uint32_t step,
                                const RowFn& fn) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  const int rf = t->spec.row_floats();
  std::lock_guard lock(t->mu);
  ASSIGN_OR_RETURN(Scratch* s, GroupAndRead(keys, n, rf));
  auto& [g, rows, st, found, need] = *s;
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

Status RocksDbStoreImpl::ScanOneShard(const DiskTable& t, uint32_t s, const ScanFn& fn,
                                      bool* stop) const {
  const int table = t.spec.table_id;
  const int rf = t.spec.row_floats();
  const size_t vsize = codec::RowValueSize(rf);
  std::vector<float> row(rf);
  Status st = shards_[s]->Scan(codec::TableBegin(table), codec::TableEnd(table),
                               [&](std::string_view k, std::string_view v) {
                                 if (k.size() != codec::kRowKeySize || v.size() != vsize)
                                   return true;  // never written by this store: skipped
                                 RowStats rs;
                                 codec::DecodeRowValue(v.data(), rf, row.data(), &rs);
                                 if (!fn(codec::DecodeRowKey(k.data()), row.data(), rs)) *stop = true;
                                 return !*stop;
                               });
  return st.WithContext("scan of table " + std::to_string(table));
}

Status RocksDbStoreImpl::Scan(int table, const ScanFn& fn) const {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  bool stop = false;
  for (uint32_t s = 0; s < shards_.size() && !stop; ++s)
    if (shards_[s]) RETURN_IF_ERROR(ScanOneShard(*t, s, fn, &stop));
  return Status::OK();
}

// Every row of shard instance s has VirtualShardOf(key, V) == s (Group
// routes by it), so reading only the wanted instances yields exactly the
// rows the filtered default yields, in the same order (shard, then key).
Status RocksDbStoreImpl::ScanShards(int table, uint32_t num_virtual_shards,
                                    const std::vector<uint8_t>& wanted, const ScanFn& fn) const {
  if (num_virtual_shards != opt_.virtual_shards || wanted.size() != num_virtual_shards)
    return EmbeddingStore::ScanShards(table, num_virtual_shards, wanted, fn);
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  bool stop = false;
  for (uint32_t s = 0; s < shards_.size() && !stop; ++s)
    if (wanted[s] && shards_[s]) RETURN_IF_ERROR(ScanOneShard(*t, s, fn, &stop));
  return Status::OK();
}

Status RocksDbStoreImpl::ScanShard(int table, uint32_t shard, const ScanFn& fn) const {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  if (shard >= shards_.size() || !shards_[shard]) return Status::OK();
  bool stop = false;
  return ScanOneShard(*t, shard, fn, &stop);
}

Status RocksDbStoreImpl::Put(int table, const Key* keys, size_t n, const float* in_rows,
                             const RowStats* in_stats) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  std::lock_guard lock(t->mu);
  return PutLocked(t, keys, n, in_rows, in_stats, /*bulk=*/true);
}

Status RocksDbStoreImpl::Contains(int table, const Key* keys, size_t n, uint8_t* present) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  std::lock_guard lock(t->mu);
  ASSIGN_OR_RETURN(Scratch* s, GroupAndRead(keys, n, t->spec.row_floats()));
  auto& [g, rows, st, found, need] = *s;
  for (size_t i = 0; i < n; ++i) present[i] = found[g.slot[i]];
  return Status::OK();
}

Status RocksDbStoreImpl::Erase(int table, const Key* keys, size_t n) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  const int rf = t->spec.row_floats();
  std::lock_guard lock(t->mu);
  ASSIGN_OR_RETURN(Scratch* s, GroupAndRead(keys, n, rf));
  auto& [g, rows, st, found, need] = *s;
  return CommitErase(t, g, rows, st, found);
}

Status RocksDbStoreImpl::ReadRows(int table, const Key* keys, size_t n, float* out_rows,
                                  RowStats* out_stats, uint8_t* out_found) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  const int rf = t->spec.row_floats();
  std::lock_guard lock(t->mu);
  ASSIGN_OR_RETURN(Scratch* s, GroupAndRead(keys, n, rf));
  auto& [g, rows, st, found, need] = *s;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u = g.slot[i];
    out_found[i] = found[u];
    if (!found[u]) continue;
    std::copy_n(rows.data() + size_t{u} * rf, rf, out_rows + i * rf);
    out_stats[i] = st[u];
  }
  return Status::OK();
}

Status RocksDbStoreImpl::WriteRows(int table, const Key* keys, size_t n, const float* rows,
                                   const RowStats* stats) {
  ASSIGN_OR_RETURN(DiskTable* t, Get(table));
  std::lock_guard lock(t->mu);
  return PutLocked(t, keys, n, rows, stats, /*bulk=*/false);
}

}  // namespace ctrps::storage
