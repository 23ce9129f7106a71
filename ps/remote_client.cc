#include "ps/remote_client.h"
#include "ps/entry_select.h"
#include "ps/table_rewrite.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "ps/wire.h"

namespace ctrps::ps {
namespace {

// Copies rows between key order and a server's part: dst[d(k)] = src[s(k)]
// for k < n, rows of `width` floats; the common widths get fixed-size
// copies instead of a memcpy call per row.
template <int kWidth, typename DstIndex, typename SrcIndex>
void MoveRowsFixed(float* dst, DstIndex d, const float* src, SrcIndex s, size_t n) {
  for (size_t k = 0; k < n; ++k)
    std::memcpy(dst + size_t{d(k)} * kWidth, src + size_t{s(k)} * kWidth, kWidth * sizeof(float));
}
template <typename DstIndex, typename SrcIndex>
void MoveRows(float* dst, DstIndex d, const float* src, SrcIndex s, size_t n, int width) {
  switch (width) {
    case 8: return MoveRowsFixed<8>(dst, d, src, s, n);
    case 16: return MoveRowsFixed<16>(dst, d, src, s, n);
    case 32: return MoveRowsFixed<32>(dst, d, src, s, n);
    case 64: return MoveRowsFixed<64>(dst, d, src, s, n);
  }
  for (size_t k = 0; k < n; ++k)
    std::memcpy(dst + size_t{d(k)} * width, src + size_t{s(k)} * width, width * sizeof(float));
}

class RemoteClient final : public EmbeddingClient {
 public:
  RemoteClient(RemoteClientOptions o, Transport* t) : opt_(std::move(o)), t_(t) {
    pull_plans_.resize(opt_.layout.num_servers());
    push_plans_.resize(opt_.layout.num_servers());
  }

  Status DeclareTables(const std::vector<TableConfig>& tables) override {
    for (const TableConfig& tc : tables) {
      RETURN_IF_ERROR(NewSparseOptimizer(tc.optimizer).status());
      widths_[tc.table_id] = tc.dim;
    }
    MessageBuilder b(MessageKind::kDeclare, 0, 0);
    b.SetBlob(tables.data(), tables.size() * sizeof(TableConfig));
    b.Finish();
    std::vector<char> msg = b.Take();
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest, msg));
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(Expect(s, kTagControl, MessageKind::kAck, "the declare reply").status());
    return Status::OK();
  }

  Status Pull(const std::vector<TableSlice>& slices, bool training) override {
    RETURN_IF_ERROR(StartPull(slices, training));
    return FinishPull();
  }

  Status StartPull(const std::vector<TableSlice>& slices, bool training) override {
    if (pull_in_flight_) return Status::FailedPrecondition("a pull is already in flight");
    RETURN_IF_ERROR(Plan(slices, &pull_plans_));
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      MessageBuilder b(MessageKind::kPull, training ? kFlagTraining : 0, 0);
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest,
                               Build(pull_plans_[s], &b, slices, false)));
    }
    pull_slices_ = slices;
    pull_in_flight_ = true;
    return Status::OK();
  }

  Status FinishPull() override {
    if (!pull_in_flight_) return Status::OK();
    pull_in_flight_ = false;
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      ASSIGN_OR_RETURN(Message m, Expect(s, kTagPullReply, MessageKind::kPullReply, "the pull reply"));
      DecodedMessage d;
      RETURN_IF_ERROR(DecodeMessage(&m.payload, &d));
      const ServerPlan& p = pull_plans_[s];
      if (d.slices.size() != p.parts.size())
        return Status::Corruption(ServerName(s) + " answered a pull of " +
                                  std::to_string(p.parts.size()) + " slices with " +
                                  std::to_string(d.slices.size()));
      for (size_t i = 0; i < p.parts.size(); ++i) {
        const Part& part = p.parts[i];
        const TableSlice& ts = pull_slices_[part.slice];
        const WireSlice& ws = d.slices[i];
        const int w = Width(ts.table);
        if (ws.table != ts.table || ws.width != w || ws.n != part.count() || !ws.data)
          return Status::Corruption(ServerName(s) + " answered pull slice " + std::to_string(i) +
                                    " with the wrong table, width or row count");
        if (part.positions.empty()) {
          std::memcpy(ts.data, ws.data, ws.n * w * sizeof(float));
        } else {
          const uint32_t* pos = part.positions.data();
          MoveRows(ts.data, [pos](size_t k) { return pos[k]; }, ws.data, [](size_t k) { return k; },
                   ws.n, w);
        }
      }
      t_->Recycle(std::move(m.payload));  // a later message may reuse its memory
    }
    return Status::OK();
  }

  Status Push(const std::vector<TableSlice>& slices, uint32_t step) override {
    RETURN_IF_ERROR(Plan(slices, &push_plans_));
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      MessageBuilder b(MessageKind::kPush, 0, step);
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest,
                               Build(push_plans_[s], &b, slices, true)));
    }
    ++unacked_pushes_;
    int bound = 0;  // BSP: the ack is the step barrier
    if (opt_.consistency == Consistency::kSSP) bound = opt_.staleness;
    if (opt_.consistency == Consistency::kASP) bound = 64;
    while (unacked_pushes_ > bound) RETURN_IF_ERROR(WaitOldestPush());
    return Status::OK();
  }

  Status Flush() override {
    RETURN_IF_ERROR(FinishPull());
    while (unacked_pushes_ > 0) RETURN_IF_ERROR(WaitOldestPush());
    return Status::OK();
  }

  Status Shutdown() override {
    RETURN_IF_ERROR(Flush());
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest,
                               TextMessage(MessageKind::kShutdown, 0, "")));
    return Status::OK();
  }

  int Width(int table) const override {
    auto it = widths_.find(table);
    return it == widths_.end() ? 0 : it->second;
  }

  Status ScanRows(int table, const RowVisitor& fn) override {
    const int w = Width(table);
    if (w == 0) return Status::NotFound("table " + std::to_string(table) + " was not declared");
    RETURN_IF_ERROR(Flush());
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      MessageBuilder b(MessageKind::kScan, 0, 0);
      b.AddSlice(table, w, 0, false, false);
      b.Finish();
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest, b.Take()));
      bool more = true, keep = true;
      while (more) {
        ASSIGN_OR_RETURN(Message m, Expect(s, kTagControl, MessageKind::kScanChunk, "a scan chunk"));
        DecodedMessage d;
        RETURN_IF_ERROR(DecodeMessage(&m.payload, &d));
        more = !(d.flags & kFlagLast);
        if (d.slices.size() != 1 || d.slices[0].width != w || !d.slices[0].keys || !d.slices[0].data)
          return Status::Corruption(ServerName(s) + " sent a malformed scan chunk");
        const WireSlice& ws = d.slices[0];
        for (size_t i = 0; i < ws.n && keep; ++i) keep = fn(ws.keys[i], ws.data + i * w);
      }
      if (!keep) break;
    }
    return Status::OK();
  }

  Status LoadRows(int table, const Key* keys, size_t n, const float* rows) override {
    const int w = Width(table);
    if (w == 0) return Status::NotFound("table " + std::to_string(table) + " was not declared");
    std::vector<TableSlice> slices = {{table, keys, n, const_cast<float*>(rows)}};
    RETURN_IF_ERROR(Flush());
    RETURN_IF_ERROR(Plan(slices, &push_plans_));
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      MessageBuilder b(MessageKind::kLoad, 0, 0);
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest,
                               Build(push_plans_[s], &b, slices, true)));
    }
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(Expect(s, kTagControl, MessageKind::kAck, "the load reply").status());
    return Status::OK();
  }

  StatusOr<std::vector<storage::ShardFileInfo>> SaveShards(const std::string& dir, uint32_t step,
                                                           uint32_t since_step) override {
    RETURN_IF_ERROR(Flush());
    std::string blob(8, '\0');
    std::memcpy(&blob[0], &step, 4);
    std::memcpy(&blob[4], &since_step, 4);
    blob += dir;
    MessageBuilder b(MessageKind::kSaveShards, 0, step);
    b.SetBlob(blob.data(), blob.size());
    b.Finish();
    std::vector<storage::ShardFileInfo> files;
    RETURN_IF_ERROR(AskEveryServer(b.Take(), "the save-shards reply",
                                   [&](int s, const DecodedMessage& d) {
                                     return DecodeShardFiles(d.blob, d.blob_bytes, &files)
                                         .WithContext(ServerName(s));
                                   }));
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.shard < b.shard; });
    return files;
  }

  Status LoadShards(const std::vector<std::string>& dirs) override {
    RETURN_IF_ERROR(Flush());
    std::string blob;
    for (const std::string& d : dirs) blob += (blob.empty() ? "" : "\n") + d;
    return AskEveryServer(TextMessage(MessageKind::kLoadShards, 0, blob), "the load-shards reply",
                          nullptr);
  }

  Status RewriteTable(const TableConfig& nc, const RowBasisChange* change,
                      const std::string& scratch_dir) override {
    const int w = Width(nc.table_id);
    if (w == 0)
      return Status::NotFound("table " + std::to_string(nc.table_id) + " was not declared");
    if (change) {
      RETURN_IF_ERROR(change->Validate(w, nc.dim));
      RETURN_IF_ERROR(Flush());
      const std::string blob = EncodeRewrite(nc, *change, scratch_dir);
      MessageBuilder b(MessageKind::kRewrite, 0, 0);
      b.SetBlob(blob.data(), blob.size());
      b.Finish();
      RETURN_IF_ERROR(AskEveryServer(b.Take(), "the rewrite reply", nullptr));
    }
    widths_[nc.table_id] = nc.dim;
    return Status::OK();
  }

  Status DropTables(const std::vector<int>& tables, bool send) override {
    for (int t : tables)
      if (Width(t) == 0) return Status::NotFound("drop: table " + std::to_string(t) + " was not declared");
    if (send) {
      RETURN_IF_ERROR(Flush());
      std::string blob;
      for (int t : tables) blob += (blob.empty() ? "" : " ") + std::to_string(t);
      RETURN_IF_ERROR(AskEveryServer(TextMessage(MessageKind::kDropTables, 0, blob),
                                     "the drop-tables reply", nullptr));
    }
    for (int t : tables) widths_.erase(t);
    return Status::OK();
  }

  StatusOr<std::vector<uint64_t>> EntryHistogram(const EntrySet& set, int level,
                                                 uint32_t prefix) override {
    RETURN_IF_ERROR(Flush());
    const std::string blob = EncodeHistogramRequest(set, level, prefix);
    std::vector<uint64_t> hist(kHistogramBuckets, 0);
    RETURN_IF_ERROR(AskEveryServer(TextMessage(MessageKind::kEntryHistogram, 0, blob),
                                   "the histogram reply", [&](int s, const DecodedMessage& d) {
                                     if (d.blob_bytes != hist.size() * sizeof(uint64_t))
                                       return Status::Corruption(ServerName(s) + " sent a histogram of " +
                                                                 std::to_string(d.blob_bytes) + " bytes");
                                     const uint64_t* h = reinterpret_cast<const uint64_t*>(d.blob);
                                     for (size_t i = 0; i < hist.size(); ++i) hist[i] += h[i];
                                     return Status::OK();
                                   }));
    return hist;
  }

  StatusOr<uint64_t> PruneEntries(const EntrySet& set, uint32_t max_bits, bool reset_state,
                                  const std::string& scratch_dir) override {
    RETURN_IF_ERROR(Flush());
    const std::string blob = EncodePruneRequest(set, max_bits, reset_state, scratch_dir);
    uint64_t zeroed = 0;
    RETURN_IF_ERROR(AskEveryServer(TextMessage(MessageKind::kPruneEntries, 0, blob),
                                   "the prune reply", [&](int s, const DecodedMessage& d) {
                                     if (d.blob_bytes != sizeof(uint64_t))
                                       return Status::Corruption(ServerName(s) + " sent a bad prune reply");
                                     uint64_t z;
                                     std::memcpy(&z, d.blob, sizeof(z));
                                     zeroed += z;
                                     return Status::OK();
                                   }));
    return zeroed;
  }

  uint32_t NumVirtualShards() const override {
    return static_cast<uint32_t>(opt_.layout.num_virtual_shards);
  }

  StatusOr<std::vector<storage::TableStats>> TableStats() override {
    RETURN_IF_ERROR(Flush());
    std::map<int, storage::TableStats> sum;
    RETURN_IF_ERROR(AskEveryServer(
        TextMessage(MessageKind::kStats, 0, ""), "the stats reply",
        [&](int s, const DecodedMessage& d) {
          std::vector<storage::TableStats> tables;
          RETURN_IF_ERROR_CTX(DecodeTableStats(d.blob, d.blob_bytes, &tables), ServerName(s));
          for (const storage::TableStats& t : tables) {
            storage::TableStats& total = sum[t.table_id];
            total.table_id = t.table_id;
            storage::AddTableStats(t, &total);
          }
          return Status::OK();
        }));
    std::vector<storage::TableStats> out;
    for (const auto& [id, st] : sum) out.push_back(st);
    return out;
  }

 private:
  // One slice's keys bound for one server: all of them (positions empty,
  // one server) or those at `positions`.
  struct Part {
    size_t slice = 0;
    size_t n_all = 0;
    std::vector<uint32_t> positions;
    size_t count() const { return positions.empty() ? n_all : positions.size(); }
  };
  struct ServerPlan {
    std::vector<Part> parts;  // one per slice, in slice order
  };

  int Server(int s) const { return opt_.layout.server_ranks[s]; }
  std::string ServerName(int s) const { return opt_.layout.Describe(Server(s)); }

  Status Plan(const std::vector<TableSlice>& slices, std::vector<ServerPlan>* plans) {
    std::vector<ServerPlan>& plan = *plans;
    const int S = opt_.layout.num_servers();
    for (const TableSlice& ts : slices)
      if (Width(ts.table) == 0)
        return Status::NotFound("table " + std::to_string(ts.table) + " was not declared");
    for (int s = 0; s < S; ++s) plan[s].parts.resize(slices.size());
    for (size_t i = 0; i < slices.size(); ++i) {
      const TableSlice& ts = slices[i];
      for (int s = 0; s < S; ++s) {
        Part& p = plan[s].parts[i];
        p.slice = i;
        p.positions.clear();
        p.n_all = S == 1 ? ts.n : 0;
      }
      if (S == 1) continue;
      for (size_t k = 0; k < ts.n; ++k)
        plan[opt_.layout.ServerOfKey(ts.keys[k])].parts[i].positions.push_back(static_cast<uint32_t>(k));
      // A server with no key of this slice gets an empty part: positions
      // empty and n_all 0.
    }
    return Status::OK();
  }

  // Server s's message for `slices` under the current plan; with_data
  // also copies each key's floats.
  std::vector<char> Build(const ServerPlan& p, MessageBuilder* b,
                          const std::vector<TableSlice>& slices, bool with_data) {
    for (const Part& part : p.parts) {
      const int table = slices[part.slice].table;
      b->AddSlice(table, Width(table), part.count(), true, with_data);
    }
    b->Finish(t_);  // every key and row is written below
    for (size_t i = 0; i < p.parts.size(); ++i) {
      const Part& part = p.parts[i];
      const TableSlice& ts = slices[part.slice];
      const int w = Width(ts.table);
      Key* keys = b->keys(i);
      float* data = with_data ? b->data(i) : nullptr;
      if (part.positions.empty()) {
        if (part.n_all) std::memcpy(keys, ts.keys, part.n_all * sizeof(Key));
        if (data && part.n_all) std::memcpy(data, ts.data, part.n_all * w * sizeof(float));
      } else {
        const uint32_t* pos = part.positions.data();
        const size_t n = part.positions.size();
        for (size_t k = 0; k < n; ++k) keys[k] = ts.keys[pos[k]];
        if (data)
          MoveRows(data, [](size_t k) { return k; }, ts.data, [pos](size_t k) { return pos[k]; }, n, w);
      }
    }
    return b->Take();
  }

  // The next reply from server s on `tag`, which must be of `kind` (an
  // error reply becomes its Status).
  // Sends a control request to every server, then takes each one's kAck
  // reply in server order, handing it to on_reply (may be null). Every
  // server answers; the first failure is returned.
  Status AskEveryServer(std::vector<char> msg, const char* what,
                        const std::function<Status(int server, const DecodedMessage& reply)>& on_reply) {
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(t_->Send(Server(s), Channel::kServer, kTagRequest, msg));
    Status first_error;
    for (int s = 0; s < opt_.layout.num_servers(); ++s) {
      auto m = Expect(s, kTagControl, MessageKind::kAck, what);
      Status st = m.status();
      DecodedMessage d;
      if (st.ok() && on_reply) st = DecodeMessage(&m->payload, &d);
      if (st.ok() && on_reply) st = on_reply(s, d);
      if (!st.ok() && first_error.ok()) first_error = st;
    }
    return first_error;
  }

  StatusOr<Message> Expect(int s, int tag, MessageKind kind, const char* what) {
    auto m = t_->Recv(Channel::kWorker, Server(s), tag, opt_.peer_timeout_ms);
    if (!m.ok())
      return Status::Unavailable(opt_.layout.Describe(t_->rank()) + " waited " +
                                 std::to_string(opt_.peer_timeout_ms) + " ms for " + what +
                                 " from " + ServerName(s) + ": " +
                                 RecvTimeoutReason(m.status(), "the server is gone or silent"));
    DecodedMessage d;
    RETURN_IF_ERROR_CTX(DecodeMessage(&m->payload, &d), std::string(what) + " from " + ServerName(s));
    if (d.kind == MessageKind::kError)
      return Status::Internal(std::string(d.blob, d.blob_bytes));
    if (d.kind != kind)
      return Status::Corruption(ServerName(s) + " sent a " + MessageKindName(d.kind) +
                                " message where " + what + " was expected");
    return std::move(m).value();
  }

  Status WaitOldestPush() {
    for (int s = 0; s < opt_.layout.num_servers(); ++s)
      RETURN_IF_ERROR(Expect(s, kTagPushAck, MessageKind::kAck, "a push acknowledgement").status());
    --unacked_pushes_;
    return Status::OK();
  }

  RemoteClientOptions opt_;
  Transport* t_;
  std::map<int, int> widths_;
  std::vector<ServerPlan> pull_plans_, push_plans_;  // a pull may be in flight during a push
  std::vector<TableSlice> pull_slices_;
  bool pull_in_flight_ = false;
  int unacked_pushes_ = 0;
};

}  // namespace

std::unique_ptr<EmbeddingClient> NewRemoteClient(RemoteClientOptions options, Transport* transport) {
  return std::make_unique<RemoteClient>(std::move(options), transport);
}

}  // namespace ctrps::ps
