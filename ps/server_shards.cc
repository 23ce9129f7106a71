// The server's requests that touch every owned shard at once: scan, bulk
// load, checkpoint save and load, and table counters (see server_impl.h).
#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "ps/keep_alive.h"
#include "ps/server_impl.h"
#include "ps/entry_select.h"
#include "ps/table_rewrite.h"
#include "storage/row_init.h"

namespace ctrps::ps::internal {

Status Server::Scan(int source, const DecodedMessage& d) {
  if (d.slices.size() != 1) return Status::Corruption("scan needs exactly one slice");
  ASSIGN_OR_RETURN(Table * t, GetTable(d.slices[0]));
  const int dim = t->config.dim, table = t->config.table_id;
  constexpr size_t kChunkRows = 1 << 15;
  std::vector<Key> keys;
  std::vector<float> rows;
  auto flush = [&](bool last) {
    MessageBuilder b(MessageKind::kScanChunk, last ? kFlagLast : 0, 0);
    b.AddSlice(table, dim, keys.size(), true, true);
    b.Finish();
    std::copy(keys.begin(), keys.end(), b.keys(0));
    std::copy(rows.begin(), rows.end(), b.data(0));
    keys.clear();
    rows.clear();
    return t_->Send(source, Channel::kWorker, kTagControl, b.Take());
  };
  for (auto& store : stores_) {
    Status send_status;
    RETURN_IF_ERROR(store->Scan(table, [&](Key k, const float* row, const storage::RowStats&) {
      keys.push_back(k);
      rows.insert(rows.end(), row, row + dim);
      if (keys.size() == kChunkRows) send_status = flush(false);
      return send_status.ok();
    }));
    RETURN_IF_ERROR(send_status);
  }
  return flush(true);
}

Status Server::Load(int source, const DecodedMessage& d) {
  for (const WireSlice& s : d.slices) {
    ASSIGN_OR_RETURN(Table * t, GetTable(s));
    if (!s.keys || !s.data) return Status::Corruption("load slice without keys or rows");
    RETURN_IF_ERROR(Group(s, &group_));
    const int rf = t->spec.row_floats(), dim = s.width;
    for (size_t k = 0; k + 1 < group_.begin.size(); ++k) {
      const uint32_t lo = group_.begin[k], hi = group_.begin[k + 1];
      if (lo == hi) continue;
      std::vector<float> full(size_t{hi - lo} * rf);
      for (uint32_t p = lo; p < hi; ++p) {
        float* r = full.data() + size_t{p - lo} * rf;
        storage::InitRow(t->spec.init, group_.key_ptr[p], dim, t->spec.slot_floats, r);
        std::memcpy(r, s.data + size_t{group_.at(p)} * dim, dim * sizeof(float));
      }
      RETURN_IF_ERROR(stores_[k]->Put(s.table, group_.key_ptr + lo, hi - lo, full.data(), nullptr));
    }
  }
  return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
}

Status Server::SaveShards(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));  // a large store takes long
  if (d.blob_bytes < 8) return Status::Corruption("save-shards request without step and dir");
  uint32_t head[2];
  std::memcpy(head, d.blob, sizeof(head));
  const std::string dir(d.blob + 8, d.blob_bytes - 8);
  const uint32_t V = static_cast<uint32_t>(opt_.layout.num_virtual_shards);
  std::vector<uint32_t> mine;
  for (uint32_t v = 0; v < V; ++v)
    if (local_shard_[v] >= 0) mine.push_back(v);
  std::vector<std::vector<storage::ShardFileInfo>> files(mine.size());
  RETURN_IF_ERROR(ParallelFor(static_cast<int>(mine.size()), IoThreads(), [&](int i) -> Status {
    storage::EmbeddingStore* store = stores_[local_shard_[mine[i]]].get();
    RETURN_IF_ERROR(store->Flush());
    ASSIGN_OR_RETURN(files[i], storage::WriteStoreShards(*store, dir, V, {mine[i]}, head[0], head[1]));
    return Status::OK();
  }));
  std::vector<storage::ShardFileInfo> written;
  for (auto& f : files) written.insert(written.end(), f.begin(), f.end());
  const std::string blob = EncodeShardFiles(written);
  MessageBuilder b(MessageKind::kAck, 0, 0);
  b.SetBlob(blob.data(), blob.size());
  b.Finish();
  return t_->Send(source, Channel::kWorker, kTagControl, b.Take());
}

Status Server::Stats(int source) {
  std::map<int, storage::TableStats> sum;
  for (const auto& store : stores_) {
    for (const storage::TableSpec& spec : store->Tables()) {
      ASSIGN_OR_RETURN(storage::TableStats st, store->Stats(spec.table_id));
      storage::TableStats& total = sum[spec.table_id];
      total.table_id = spec.table_id;
      storage::AddTableStats(st, &total);
    }
  }
  std::vector<storage::TableStats> tables;
  for (const auto& [id, st] : sum) tables.push_back(st);
  const std::string blob = EncodeTableStats(tables);
  MessageBuilder b(MessageKind::kAck, 0, 0);
  b.SetBlob(blob.data(), blob.size());
  b.Finish();
  return t_->Send(source, Channel::kWorker, kTagControl, b.Take());
}

Status Server::Rewrite(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));  // a large table takes long
  TableConfig nc;
  RowBasisChange change;
  std::string scratch;
  RETURN_IF_ERROR(DecodeRewrite(d.blob, d.blob_bytes, &nc, &change, &scratch));
  auto it = tables_.find(nc.table_id);
  if (it == tables_.end())
    return Status::NotFound("rewrite: table " + std::to_string(nc.table_id) + " was not declared");
  RETURN_IF_ERROR(change.Validate(it->second.config.dim, nc.dim));
  ASSIGN_OR_RETURN(auto optimizer, NewSparseOptimizer(nc.optimizer));
  const storage::TableSpec spec = TableSpecOf(nc, *optimizer);
  auto map = [&](Key, const float* old_row, float* new_row) { change.Apply(old_row, new_row); };
  for (auto& store : stores_)
    RETURN_IF_ERROR_CTX(store->RewriteTable(spec, map, scratch),
                        "server " + std::to_string(me_));
  it->second = Table{nc, std::move(optimizer), spec};
  return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
}

Status Server::DropTables(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));  // compaction takes long
  std::istringstream in(std::string(d.blob, d.blob_bytes));
  int table;
  while (in >> table) {
    auto it = tables_.find(table);
    if (it == tables_.end())
      return Status::NotFound("drop: table " + std::to_string(table) + " was not declared");
    for (auto& store : stores_)
      RETURN_IF_ERROR_CTX(store->DropTable(table), "server " + std::to_string(me_));
    tables_.erase(it);
  }
  return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
}

Status Server::EntryHistogram(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));
  EntrySet set;
  int level;
  uint32_t prefix;
  RETURN_IF_ERROR(DecodeHistogramRequest(d.blob, d.blob_bytes, &set, &level, &prefix));
  std::vector<uint64_t> hist(kHistogramBuckets, 0);
  for (size_t i = 0; i < set.tables.size(); ++i) {
    auto it = tables_.find(set.tables[i]);
    if (it == tables_.end())
      return Status::NotFound("histogram: table " + std::to_string(set.tables[i]) + " was not declared");
    const int width = it->second.config.dim, skip = set.skip[i];
    for (auto& store : stores_)
      RETURN_IF_ERROR(store->Scan(set.tables[i], [&](Key, const float* row, const storage::RowStats&) {
        AddRowToHistogram(row, skip, width, level, prefix, hist.data());
        return true;
      }));
  }
  MessageBuilder b(MessageKind::kAck, 0, 0);
  b.SetBlob(hist.data(), hist.size() * sizeof(uint64_t));
  b.Finish();
  return t_->Send(source, Channel::kWorker, kTagControl, b.Take());
}

Status Server::PruneEntries(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));
  EntrySet set;
  uint32_t max_bits;
  bool reset;
  std::string scratch;
  RETURN_IF_ERROR(DecodePruneRequest(d.blob, d.blob_bytes, &set, &max_bits, &reset, &scratch));
  uint64_t zeroed = 0;
  for (size_t i = 0; i < set.tables.size(); ++i) {
    auto it = tables_.find(set.tables[i]);
    if (it == tables_.end())
      return Status::NotFound("prune: table " + std::to_string(set.tables[i]) + " was not declared");
    const int width = it->second.config.dim, skip = set.skip[i];
    const int row_floats = it->second.spec.row_floats();
    const SparseOptimizer* opt = reset ? it->second.optimizer.get() : nullptr;
    for (auto& store : stores_)
      RETURN_IF_ERROR(store->UpdateRows(set.tables[i], [&](Key, const float* row, float* out) {
        std::copy_n(row, row_floats, out);
        const int z = PruneRow(out, skip, width, max_bits, opt);
        zeroed += z;
        return z > 0 || (opt != nullptr && !std::equal(row, row + row_floats, out));
      }, scratch).status());
  }
  MessageBuilder b(MessageKind::kAck, 0, 0);
  b.SetBlob(&zeroed, sizeof(zeroed));
  b.Finish();
  return t_->Send(source, Channel::kWorker, kTagControl, b.Take());
}

Status Server::LoadShards(int source, const DecodedMessage& d) {
  KeepAlive alive(t_, KeepAlive::IntervalFor(opt_.peer_timeout_ms));  // a large store takes long
  const std::string blob(d.blob, d.blob_bytes);
  const uint32_t V = static_cast<uint32_t>(opt_.layout.num_virtual_shards);
  // Rows already here (a disk store reopened after a crash holds rows
  // newer than the checkpoint) are dropped first.
  for (auto& store : stores_) {
    for (const storage::TableSpec& spec : store->Tables()) {
      RETURN_IF_ERROR(store->DropTable(spec.table_id));
      RETURN_IF_ERROR(store->CreateTable(spec));
    }
  }
  size_t start = 0;
  while (start < blob.size()) {
    size_t end = blob.find('\n', start);
    if (end == std::string::npos) end = blob.size();
    const std::string dir = blob.substr(start, end - start);
    start = end + 1;
    // One store per shard: shards load in parallel; dirs in order.
    RETURN_IF_ERROR(ParallelFor(static_cast<int>(V), IoThreads(), [&](int i) -> Status {
      const uint32_t v = static_cast<uint32_t>(i);
      if (local_shard_[v] < 0) return Status::OK();
      return storage::LoadShardFile(dir + "/" + storage::ShardFileName(v), v, V,
                                    stores_[local_shard_[v]].get(), /*verified=*/true);
    }));
  }
  return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
}

}  // namespace ctrps::ps::internal
