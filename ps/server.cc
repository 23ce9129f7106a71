#include "ps/server.h"

#include <cstring>
#include <map>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "common/flat_key_map.h"
#include "common/parallel.h"
#include "ps/client.h"
#include "ps/wire.h"

namespace ctrps::ps {
namespace {

static_assert(std::is_trivially_copyable<TableConfig>::value, "TableConfig is sent raw");

int ReplyTag(MessageKind request) {
  switch (request) {
    case MessageKind::kPull: return kTagPullReply;
    case MessageKind::kPush: return kTagPushAck;
    default: return kTagControl;
  }
}

// out[order[p]] = rows[p] for each of n rows of `width` floats; the common
// widths get fixed-size copies instead of a memcpy call per row.
template <int kWidth>
void ScatterFixed(const float* rows, const uint32_t* order, size_t n, float* out) {
  for (size_t p = 0; p < n; ++p)
    std::memcpy(out + size_t{order[p]} * kWidth, rows + p * kWidth, kWidth * sizeof(float));
}
void ScatterRows(const float* rows, const uint32_t* order, size_t n, int width, float* out) {
  switch (width) {
    case 8: return ScatterFixed<8>(rows, order, n, out);
    case 16: return ScatterFixed<16>(rows, order, n, out);
    case 32: return ScatterFixed<32>(rows, order, n, out);
    case 64: return ScatterFixed<64>(rows, order, n, out);
  }
  for (size_t p = 0; p < n; ++p)
    std::memcpy(out + size_t{order[p]} * width, rows + p * width, width * sizeof(float));
}

class Server final : public ParameterServer {
 public:
  Server(ServerOptions o, Transport* t) : opt_(std::move(o)), t_(t) {
    me_ = opt_.layout.ServerIndex(t_->rank());
    pending_.resize(opt_.layout.num_workers());
    done_.assign(opt_.layout.num_workers(), false);
  }

  Status Init() {
    if (me_ < 0) return Status::InvalidArgument(opt_.layout.Describe(t_->rank()) + " is not a server");
    const int V = opt_.layout.num_virtual_shards, S = opt_.layout.num_servers();
    local_shard_.assign(V, -1);
    for (int v = me_; v < V; v += S) {
      local_shard_[v] = static_cast<int32_t>(stores_.size());
      std::unique_ptr<storage::EmbeddingStore> store;
      if (opt_.new_store) {
        ASSIGN_OR_RETURN(store, opt_.new_store(static_cast<uint32_t>(v)));
      } else {
        store = storage::NewMemoryStore();
      }
      stores_.push_back(std::move(store));
    }
    return Status::OK();
  }

  Status Run() override {
    int remaining = opt_.layout.num_workers();
    while (remaining > 0) {
      auto m = t_->Recv(Channel::kServer, kAnySource, kTagRequest, opt_.peer_timeout_ms);
      if (!m.ok()) return TimeoutError();
      const int w = opt_.layout.WorkerIndex(m->source);
      if (w < 0) {
        spdlog::warn("server {}: ignoring a request from non-worker rank {}", me_, m->source);
        continue;
      }
      DecodedMessage d;
      Status s = DecodeMessage(&m->payload, &d);
      if (!s.ok()) {
        MessageKind k = MessageKind::kError;
        if (m->payload.size() >= 6) {
          uint16_t raw;
          std::memcpy(&raw, m->payload.data() + 4, 2);
          k = static_cast<MessageKind>(raw);
        }
        RETURN_IF_ERROR(ReplyError(m->source, ReplyTag(k), 0, s));
        continue;
      }
      if (d.kind == MessageKind::kShutdown) {
        if (!done_[w]) --remaining;
        done_[w] = true;
        continue;
      }
      if (d.kind == MessageKind::kPush && opt_.consistency == Consistency::kBSP) {
        RETURN_IF_ERROR(HoldBspPush(w, std::move(*m)));
        continue;
      }
      s = Handle(m->source, d);
      if (!s.ok()) RETURN_IF_ERROR(ReplyError(m->source, ReplyTag(d.kind), d.step, s));
      t_->Recycle(std::move(m->payload));  // a later message may reuse its memory
    }
    for (const auto& p : pending_)
      if (p.has_value())
        return Status::FailedPrecondition("server " + std::to_string(me_) +
                                          ": workers shut down in the middle of a BSP step");
    return Status::OK();
  }

 private:
  struct Table {
    TableConfig config;
    std::unique_ptr<SparseOptimizer> optimizer;
    storage::TableSpec spec;
  };
  // Keys of one slice grouped by owned shard: order[] lists positions in
  // the slice, shard by shard; begin[s]..begin[s+1] is shard s's part.
  struct Grouping {
    std::vector<uint32_t> order, begin;
    std::vector<Key> keys;  // keys in `order`
  };

  Status TimeoutError() const {
    std::string waiting;
    for (int w = 0; w < opt_.layout.num_workers(); ++w) {
      if (done_[w]) continue;
      const bool has_pending_step = std::any_of(pending_.begin(), pending_.end(),
                                                [](const auto& p) { return p.has_value(); });
      if (has_pending_step && pending_[w].has_value()) continue;
      waiting += (waiting.empty() ? "" : ", ") + opt_.layout.Describe(opt_.layout.worker_ranks[w]);
    }
    const bool bsp_wait = std::any_of(pending_.begin(), pending_.end(),
                                      [](const auto& p) { return p.has_value(); });
    return Status::Unavailable(
        opt_.layout.Describe(t_->rank()) + ": no message for " +
        std::to_string(opt_.peer_timeout_ms) + " ms while waiting for " +
        (bsp_wait ? "the rest of a BSP step's pushes" : "worker requests") + " from " + waiting);
  }

  Status ReplyError(int dest, int tag, uint32_t step, const Status& s) {
    const std::string text = opt_.layout.Describe(t_->rank()) + ": " + s.ToString();
    spdlog::warn("{}", text);
    return t_->Send(dest, Channel::kWorker, tag, TextMessage(MessageKind::kError, step, text));
  }

  StatusOr<Table*> GetTable(const WireSlice& s) {
    auto it = tables_.find(s.table);
    if (it == tables_.end())
      return Status::NotFound("table " + std::to_string(s.table) + " was not declared");
    if (s.width != it->second.config.dim)
      return Status::Corruption("table " + std::to_string(s.table) + " has width " +
                                std::to_string(it->second.config.dim) + ", message says " +
                                std::to_string(s.width));
    return &it->second;
  }

  // With one local store: every key's shard must be it.
  Status CheckOwned(const WireSlice& s) {
    for (size_t i = 0; i < s.n; ++i)
      if (local_shard_[opt_.layout.ShardOfKey(s.keys[i])] < 0) return NotOurs(s, s.keys[i]);
    return Status::OK();
  }

  Status NotOurs(const WireSlice& s, Key key) const {
    const uint32_t v = opt_.layout.ShardOfKey(key);
    return Status::InvalidArgument("key " + std::to_string(key) + " of table " +
                                   std::to_string(s.table) + " belongs to server " +
                                   std::to_string(opt_.layout.ServerOfShard(v)) +
                                   ", not this one");
  }

  Status Group(const WireSlice& s, Grouping* g) {
    const size_t nshards = stores_.size();
    shard_of_.resize(s.n);
    g->begin.assign(nshards + 1, 0);
    for (size_t i = 0; i < s.n; ++i) {
      const uint32_t v = opt_.layout.ShardOfKey(s.keys[i]);
      const int32_t local = local_shard_[v];
      if (local < 0) return NotOurs(s, s.keys[i]);
      shard_of_[i] = static_cast<uint32_t>(local);
      ++g->begin[local + 1];
    }
    for (size_t k = 0; k < nshards; ++k) g->begin[k + 1] += g->begin[k];
    g->order.resize(s.n);
    g->keys.resize(s.n);
    cursor_.assign(g->begin.begin(), g->begin.end() - 1);
    for (size_t i = 0; i < s.n; ++i) {
      const uint32_t pos = cursor_[shard_of_[i]]++;
      g->order[pos] = static_cast<uint32_t>(i);
      g->keys[pos] = s.keys[i];
    }
    return Status::OK();
  }

  Status Handle(int source, const DecodedMessage& d) {
    switch (d.kind) {
      case MessageKind::kDeclare: return Declare(source, d);
      case MessageKind::kPull: return Pull(source, d);
      case MessageKind::kPush: {
        for (const WireSlice& s : d.slices) RETURN_IF_ERROR(ApplySlice(s, d.step));
        return t_->Send(source, Channel::kWorker, kTagPushAck, TextMessage(MessageKind::kAck, d.step, ""));
      }
      case MessageKind::kScan: return Scan(source, d);
      case MessageKind::kLoad: return Load(source, d);
      case MessageKind::kSaveShards: return SaveShards(source, d);
      case MessageKind::kLoadShards: return LoadShards(source, d);
      case MessageKind::kStats: return Stats(source);
      default:
        return Status::InvalidArgument(std::string("unexpected request kind ") +
                                       MessageKindName(d.kind));
    }
  }

  Status Declare(int source, const DecodedMessage& d) {
    if (d.blob_bytes % sizeof(TableConfig) != 0)
      return Status::Corruption("declare blob of " + std::to_string(d.blob_bytes) +
                                " bytes is not a whole number of table configs");
    const size_t n = d.blob_bytes / sizeof(TableConfig);
    for (size_t i = 0; i < n; ++i) {
      TableConfig tc;
      std::memcpy(&tc, d.blob + i * sizeof(TableConfig), sizeof(tc));
      if (tc.table_id < 0 || tc.table_id >= kMaxTables || tc.dim < 1)
        return Status::InvalidArgument("declare: bad table " + std::to_string(tc.table_id));
      ASSIGN_OR_RETURN(auto optimizer, NewSparseOptimizer(tc.optimizer));
      storage::TableSpec spec;
      spec.table_id = tc.table_id;
      spec.dim = tc.dim;
      spec.slot_floats = optimizer->SlotFloats(tc.dim);
      spec.init.seed = tc.init_seed;
      spec.init.scale = tc.init_scale;
      spec.init.zero_prefix = tc.zero_prefix;
      optimizer->ConfigureInit(&spec.init);
      for (auto& store : stores_)
        RETURN_IF_ERROR_CTX(store->CreateTable(spec), "declaring table " + std::to_string(tc.table_id));
      tables_[tc.table_id] = Table{tc, std::move(optimizer), spec};
    }
    return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
  }

  Status Pull(int source, const DecodedMessage& d) {
    const bool training = d.flags & kFlagTraining;
    MessageBuilder b(MessageKind::kPullReply, 0, d.step);
    for (const WireSlice& s : d.slices) {
      ASSIGN_OR_RETURN(Table * t, GetTable(s));
      (void)t;
      if (!s.keys) return Status::Corruption("pull slice without keys");
      b.AddSlice(s.table, s.width, s.n, false, true);
    }
    b.Finish(t_);  // every row is written below
    for (size_t i = 0; i < d.slices.size(); ++i) {
      const WireSlice& s = d.slices[i];
      float* out = b.data(i);
      if (stores_.size() == 1) {  // one shard here: straight into the reply, in key order
        RETURN_IF_ERROR(CheckOwned(s));
        RETURN_IF_ERROR(stores_[0]->Lookup(s.table, s.keys, s.n, out, s.width, training));
        continue;
      }
      RETURN_IF_ERROR(Group(s, &group_));
      rows_.resize(s.n * s.width);
      for (size_t k = 0; k + 1 < group_.begin.size(); ++k) {
        const uint32_t lo = group_.begin[k], hi = group_.begin[k + 1];
        if (lo == hi) continue;
        RETURN_IF_ERROR(stores_[k]->Lookup(s.table, group_.keys.data() + lo, hi - lo,
                                           rows_.data() + size_t{lo} * s.width, s.width, training));
      }
      ScatterRows(rows_.data(), group_.order.data(), s.n, s.width, out);
    }
    return t_->Send(source, Channel::kWorker, kTagPullReply, b.Take());
  }

  // Applies one slice of gradients (unique keys) with its table's optimizer.
  Status ApplySlice(const WireSlice& s, uint32_t step) {
    ASSIGN_OR_RETURN(Table * t, GetTable(s));
    if (!s.keys || !s.data) return Status::Corruption("push slice without keys or gradients");
    RETURN_IF_ERROR(Group(s, &group_));
    const int dim = s.width;
    const SparseOptimizer* opt = t->optimizer.get();
    for (size_t k = 0; k + 1 < group_.begin.size(); ++k) {
      const uint32_t lo = group_.begin[k], hi = group_.begin[k + 1];
      if (lo == hi) continue;
      const uint32_t* order = group_.order.data() + lo;
      RETURN_IF_ERROR(stores_[k]->Modify(s.table, group_.keys.data() + lo, hi - lo, step,
                                         [&](size_t i, float* row) {
                                           opt->Apply(row, s.data + size_t{order[i]} * dim, dim);
                                         }));
    }
    return Status::OK();
  }

  Status HoldBspPush(int w, Message m) {
    DecodedMessage d;
    RETURN_IF_ERROR(DecodeMessage(&m.payload, &d));  // decoded already once: cannot fail
    if (pending_[w].has_value())
      return Status::FailedPrecondition(opt_.layout.Describe(m.source) + " pushed step " +
                                        std::to_string(d.step) + " before step " +
                                        std::to_string(pending_step_) + " was complete");
    bool any = false;
    for (const auto& p : pending_) any |= p.has_value();
    if (any && d.step != pending_step_)
      return Status::FailedPrecondition(opt_.layout.Describe(m.source) + " pushed step " +
                                        std::to_string(d.step) + " while the others are at step " +
                                        std::to_string(pending_step_));
    pending_step_ = d.step;
    pending_[w] = std::move(m);
    for (const auto& p : pending_)
      if (!p.has_value()) return Status::OK();
    Status s = ApplyBspStep();
    for (size_t i = 0; i < pending_.size(); ++i) {
      const int rank = opt_.layout.worker_ranks[i];
      if (s.ok()) {
        RETURN_IF_ERROR(t_->Send(rank, Channel::kWorker, kTagPushAck,
                                 TextMessage(MessageKind::kAck, pending_step_, "")));
      } else {
        RETURN_IF_ERROR(ReplyError(rank, kTagPushAck, pending_step_, s));
      }
      t_->Recycle(std::move(pending_[i]->payload));
      pending_[i].reset();
    }
    return Status::OK();
  }

  // Sums every key's gradients over the workers in worker order, then
  // applies each table once.
  Status ApplyBspStep() {
    std::vector<DecodedMessage> ds(pending_.size());
    std::map<int, std::vector<const WireSlice*>> by_table;  // in worker order
    for (size_t w = 0; w < pending_.size(); ++w) {
      RETURN_IF_ERROR(DecodeMessage(&pending_[w]->payload, &ds[w]));
      for (const WireSlice& s : ds[w].slices) {
        ASSIGN_OR_RETURN(Table * t, GetTable(s));
        (void)t;
        if (!s.keys || !s.data) return Status::Corruption("push slice without keys or gradients");
        by_table[s.table].push_back(&s);
      }
    }
    for (auto& [table, slices] : by_table) {
      if (slices.size() == 1) {
        RETURN_IF_ERROR(ApplySlice(*slices[0], pending_step_));
        continue;
      }
      const int dim = slices[0]->width;
      size_t total = 0;
      for (const WireSlice* s : slices) total += s->n;
      FlatKeyMap index(2 * total);  // sized once: no rehash while merging
      merged_keys_.clear();
      merged_grads_.clear();
      merged_keys_.reserve(total);
      merged_grads_.reserve(total * dim);
      for (const WireSlice* s : slices) {
        for (size_t i = 0; i < s->n; ++i) {
          bool inserted = false;
          const uint32_t j = index.FindOrInsert(s->keys[i], &inserted);
          const float* g = s->data + i * dim;
          if (inserted) {
            merged_keys_.push_back(s->keys[i]);
            merged_grads_.insert(merged_grads_.end(), g, g + dim);
          } else {
            float* acc = merged_grads_.data() + size_t{j} * dim;
            for (int c = 0; c < dim; ++c) acc[c] += g[c];
          }
        }
      }
      WireSlice merged;
      merged.table = table;
      merged.width = dim;
      merged.n = merged_keys_.size();
      merged.keys = merged_keys_.data();
      merged.data = merged_grads_.data();
      RETURN_IF_ERROR(ApplySlice(merged, pending_step_));
    }
    return Status::OK();
  }

  Status Scan(int source, const DecodedMessage& d) {
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

  Status Load(int source, const DecodedMessage& d) {
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
          storage::InitRow(t->spec.init, group_.keys[p], dim, t->spec.slot_floats, r);
          std::memcpy(r, s.data + size_t{group_.order[p]} * dim, dim * sizeof(float));
        }
        RETURN_IF_ERROR(stores_[k]->Put(s.table, group_.keys.data() + lo, hi - lo, full.data(), nullptr));
      }
    }
    return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
  }

  // Writes each owned shard's rows to dir/shard-NNNN.rows (a checkpoint).
  Status SaveShards(int source, const DecodedMessage& d) {
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

  // Replies with each table's counters summed over the owned shards' stores.
  Status Stats(int source) {
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

  // Loads each owned shard's file from every listed directory, in order.
  Status LoadShards(int source, const DecodedMessage& d) {
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

  ServerOptions opt_;
  Transport* t_;
  int me_ = -1;
  std::vector<std::unique_ptr<storage::EmbeddingStore>> stores_;  // owned shards: v = me_ + k * S
  std::map<int, Table> tables_;
  std::vector<std::optional<Message>> pending_;  // BSP: this step's push per worker
  uint32_t pending_step_ = 0;
  std::vector<bool> done_;
  // Scratch, reused across requests.
  Grouping group_;
  std::vector<uint32_t> shard_of_, cursor_;
  std::vector<int32_t> local_shard_;  // virtual shard -> index in stores_, or -1 (not ours)
  std::vector<float> rows_, merged_grads_;
  std::vector<Key> merged_keys_;
};

}  // namespace

StatusOr<std::unique_ptr<ParameterServer>> NewParameterServer(ServerOptions options,
                                                              Transport* transport) {
  auto s = std::make_unique<Server>(std::move(options), transport);
  RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<ParameterServer>(std::move(s));
}

}  // namespace ctrps::ps
