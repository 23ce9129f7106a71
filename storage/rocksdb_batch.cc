// The RocksDB store's batch machinery: a batch's unique keys grouped by
// virtual shard and sorted, one MultiGet per shard (spread over the read
// pool), and the write of a batch as one WriteBatch per shard, undone on
// the shards already written if a later shard's write fails.
#include <algorithm>
#include <cstring>
#include <string>

#include "storage/row_codec.h"
#include "storage/rocksdb_store_impl.h"

namespace ctrps::storage {

Status RocksDbStoreImpl::Group(const Key* keys, size_t n, Grouped* g) const {
  const uint32_t V = opt_.virtual_shards;
  struct Item { uint32_t shard; uint32_t i; Key key; };
  thread_local std::vector<Item> items;
  items.resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t s = VirtualShardOf(keys[i], V);
    if (!shards_[s])
      return Status::InvalidArgument("key " + std::to_string(keys[i]) + " belongs to virtual shard " +
                                     std::to_string(s) + ", which this store does not hold");
    items[i] = Item{s, static_cast<uint32_t>(i), keys[i]};
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.shard != b.shard ? a.shard < b.shard : a.key < b.key;
  });
  g->keys.clear();
  g->runs.clear();
  g->slot.resize(n);
  for (size_t j = 0; j < n; ++j) {
    const Item& it = items[j];
    bool new_key = g->keys.empty() || j == 0 || items[j - 1].key != it.key;
    if (new_key) {
      if (g->runs.empty() || g->runs.back().shard != it.shard)
        g->runs.push_back({it.shard, static_cast<uint32_t>(g->keys.size()), 0});
      g->keys.push_back(it.key);
      g->runs.back().end = static_cast<uint32_t>(g->keys.size());
    }
    g->slot[it.i] = static_cast<uint32_t>(g->keys.size() - 1);
  }
  g->enc.resize(g->keys.size() * codec::kRowKeySize);
  for (size_t u = 0; u < g->keys.size(); ++u)
    codec::EncodeRowKey(g->keys[u], g->enc.data() + u * codec::kRowKeySize);
  return Status::OK();
}

Status RocksDbStoreImpl::ReadUnique(const Grouped& g, int rf, std::vector<float>* rows,
                                    std::vector<RowStats>* st, std::vector<uint8_t>* found,
                                    const std::vector<uint8_t>* need) {
  const size_t u = g.keys.size();
  rows->resize(u * rf);
  st->assign(u, RowStats{});
  found->assign(u, 0);
  const size_t vsize = codec::RowValueSize(rf);
  auto read_run = [&](size_t r) -> Status {
    const Grouped::Run& run = g.runs[r];
    const char* keys = g.enc.data() + size_t{run.begin} * codec::kRowKeySize;
    size_t count = run.end - run.begin;
    thread_local std::vector<char> sub_enc;
    thread_local std::vector<uint32_t> sub_at;  // sub-batch index -> key index
    if (need) {
      sub_enc.clear();
      sub_at.clear();
      for (uint32_t k = run.begin; k < run.end; ++k) {
        if (!(*need)[k]) continue;
        const char* e = g.enc.data() + size_t{k} * codec::kRowKeySize;
        sub_enc.insert(sub_enc.end(), e, e + codec::kRowKeySize);
        sub_at.push_back(k);
      }
      keys = sub_enc.data();
      count = sub_at.size();
    }
    Status bad;
    RETURN_IF_ERROR(shards_[run.shard]->MultiGet(keys, codec::kRowKeySize, count, [&](size_t i, std::string_view v) {
      const size_t k = need ? sub_at[i] : run.begin + i;
      if (v.size() != vsize) {
        if (bad.ok())
          bad = Status::Corruption("row of key " + std::to_string(g.keys[k]) + " in shard " +
                                   std::to_string(run.shard) + " has " + std::to_string(v.size()) +
                                   " bytes, expected " + std::to_string(vsize));
        return;
      }
      codec::DecodeRowValue(v.data(), rf, rows->data() + k * rf, &(*st)[k]);
      (*found)[k] = 1;
    }));
    return bad;
  };
  // Small batches stay on the caller: waking a helper costs more than a
  // few point reads.
  if (g.runs.size() > 1 && u >= kMinParallelReadKeys) return pool_->Run(g.runs.size(), read_run);
  for (size_t r = 0; r < g.runs.size(); ++r) RETURN_IF_ERROR(read_run(r));
  return Status::OK();
}

StatusOr<RocksDbStoreImpl::Scratch*> RocksDbStoreImpl::GroupAndRead(const Key* keys, size_t n,
                                                                    int rf) {
  Scratch& s = scratch();
  RETURN_IF_ERROR(Group(keys, n, &s.g));
  RETURN_IF_ERROR(ReadUnique(s.g, rf, &s.rows, &s.st, &s.found));
  return &s;
}

Status RocksDbStoreImpl::PutLocked(DiskTable* t, const Key* keys, size_t n, const float* in_rows,
                                   const RowStats* in_stats, bool bulk) {
  const int rf = t->spec.row_floats();
  if (!bulk) {
    t->written.reset();
  } else if (!t->written) {
    uint64_t total = 0;
    for (uint64_t r : t->rows) total += r;
    if (total == 0) t->written = std::make_unique<WrittenKeys>();  // counts are exact
  }
  auto& [g, rows, st, found, need] = scratch();
  RETURN_IF_ERROR(Group(keys, n, &g));
  if (t->written) {
    need.resize(g.keys.size());
    size_t maybe = 0;
    for (size_t u = 0; u < g.keys.size(); ++u) maybe += need[u] = t->written->MayContain(g.keys[u]);
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found, maybe < g.keys.size() ? &need : nullptr));
    // Added before the write: a superset stays correct if the write fails.
    for (size_t u = 0; u < g.keys.size(); ++u)
      if (!need[u]) t->written->Add(g.keys[u]);
  } else {
    RETURN_IF_ERROR(ReadUnique(g, rf, &rows, &st, &found));
  }
  bool any_found = false;
  for (size_t u = 0; u < g.keys.size() && !any_found; ++u) any_found = found[u];
  std::vector<float> old;  // previous values of found rows, for the undo
  std::vector<RowStats> old_st;
  if (any_found) {
    old = rows;
    old_st = st;
  }
  for (size_t i = 0; i < n; ++i) {  // later duplicates win
    std::copy_n(in_rows + i * rf, rf, rows.data() + size_t{g.slot[i]} * rf);
    st[g.slot[i]] = in_stats ? in_stats[i] : RowStats{};
  }
  return Commit(t, g, rows, st, found, /*write_found=*/true, &old, &old_st);
}

Status RocksDbStoreImpl::Commit(DiskTable* t, const Grouped& g, const std::vector<float>& rows,
                                const std::vector<RowStats>& st, const std::vector<uint8_t>& found,
                                bool write_found, const std::vector<float>* old,
                                const std::vector<RowStats>* old_st) {
  const int rf = t->spec.row_floats();
  const int table = t->spec.table_id;
  std::string val(codec::RowValueSize(rf), '\0');
  std::vector<ShardBatch> redo(g.runs.size()), undo(g.runs.size());
  std::vector<uint64_t> new_rows(g.runs.size());
  for (size_t r = 0; r < g.runs.size(); ++r) {
    const auto& run = g.runs[r];
    uint64_t added = 0;
    for (uint32_t u = run.begin; u < run.end; ++u) {
      std::string_view key(g.enc.data() + size_t{u} * codec::kRowKeySize, codec::kRowKeySize);
      if (found[u] && !write_found) continue;
      codec::EncodeRowValue(rows.data() + size_t{u} * rf, rf, st[u], val.data());
      redo[r].Put(key, val);
      if (found[u]) {
        codec::EncodeRowValue(old->data() + size_t{u} * rf, rf, (*old_st)[u], val.data());
        undo[r].Put(key, val);
      } else {
        ++added;
        undo[r].Delete(key);
      }
    }
    new_rows[r] = t->rows[run.shard] + added;
    AddCount(&redo[r], table, new_rows[r]);
    AddCount(&undo[r], table, t->rows[run.shard]);
  }
  return Apply(t, g, &redo, &undo, new_rows);
}

Status RocksDbStoreImpl::CommitErase(DiskTable* t, const Grouped& g,
                                     const std::vector<float>& rows,
                                     const std::vector<RowStats>& st,
                                     const std::vector<uint8_t>& found) {
  const int rf = t->spec.row_floats();
  std::string val(codec::RowValueSize(rf), '\0');
  std::vector<ShardBatch> redo(g.runs.size()), undo(g.runs.size());
  std::vector<uint64_t> new_rows(g.runs.size());
  for (size_t r = 0; r < g.runs.size(); ++r) {
    const auto& run = g.runs[r];
    uint64_t removed = 0;
    for (uint32_t u = run.begin; u < run.end; ++u) {
      if (!found[u]) continue;
      std::string_view key(g.enc.data() + size_t{u} * codec::kRowKeySize, codec::kRowKeySize);
      redo[r].Delete(key);
      codec::EncodeRowValue(rows.data() + size_t{u} * rf, rf, st[u], val.data());
      undo[r].Put(key, val);
      ++removed;
    }
    new_rows[r] = t->rows[run.shard] - removed;
    AddCount(&redo[r], t->spec.table_id, new_rows[r]);
    AddCount(&undo[r], t->spec.table_id, t->rows[run.shard]);
  }
  return Apply(t, g, &redo, &undo, new_rows);
}

void RocksDbStoreImpl::AddCount(ShardBatch* b, int table, uint64_t rows) {
  char buf[8];
  std::memcpy(buf, &rows, 8);
  b->Put(codec::CountKey(table), std::string_view(buf, 8));
}

Status RocksDbStoreImpl::Apply(DiskTable* t, const Grouped& g, std::vector<ShardBatch>* redo,
                               std::vector<ShardBatch>* undo, const std::vector<uint64_t>& new_rows) {
  for (size_t r = 0; r < g.runs.size(); ++r) {
    Status s = shards_[g.runs[r].shard]->Write(&(*redo)[r]);
    if (s.ok()) continue;
    for (size_t q = 0; q < r; ++q) {
      Status u = shards_[g.runs[q].shard]->Write(&(*undo)[q]);
      if (!u.ok())
        return Status::Internal(s.message() + "; undo of shard " + std::to_string(g.runs[q].shard) +
                                " also failed (" + u.message() + "): store may be inconsistent");
    }
    return s.WithContext("table " + std::to_string(t->spec.table_id) + " (batch not applied)");
  }
  for (size_t r = 0; r < g.runs.size(); ++r) t->rows[g.runs[r].shard] = new_rows[r];
  return Status::OK();
}

}  // namespace ctrps::storage
