// The parameter server: the request loop, pull, push and the BSP merge.
// The requests that touch every owned shard at once are in
// server_shards.cc; the class is in server_impl.h.
#include <algorithm>
#include <cstring>
#include <map>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "common/flat_key_map.h"
#include "ps/server_impl.h"

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

}  // namespace

namespace internal {

Status Server::Init() {
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
  // Large requests touch the owned shards on this thread and threads - 1
  // helpers, which sleep between requests (a server often shares its cores).
  const int threads = std::min<int>(opt_.threads, static_cast<int>(stores_.size()));
  if (threads > 1) pool_ = std::make_unique<TaskPool>(threads);
  return Status::OK();
}

Status Server::Run() {
  int remaining = opt_.layout.num_workers();
  std::vector<int> awaited;  // mid BSP step: the workers whose push is missing
  while (remaining > 0) {
    const bool bsp_wait = std::any_of(pending_.begin(), pending_.end(),
                                      [](const auto& p) { return p.has_value(); });
    awaited.clear();
    for (int w = 0; bsp_wait && w < opt_.layout.num_workers(); ++w)
      if (!done_[w] && !pending_[w].has_value()) awaited.push_back(opt_.layout.worker_ranks[w]);
    // Only those workers' keep-alives hold the wait then: the others wait
    // for this server's acknowledgement, alive but no sign of the missing.
    auto m = t_->Recv(Channel::kServer, kAnySource, kTagRequest, opt_.peer_timeout_ms,
                      bsp_wait ? &awaited : nullptr);
    // The last push was applied meanwhile (or is, now): everything below sees it.
    FinishApply();
    if (!failed_.ok()) return failed_;
    if (!m.ok()) return TimeoutError(m.status());
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
    if (d.kind == MessageKind::kPush) {  // ASP/SSP
      const int source = m->source;
      s = AckThenApplyPush(std::move(*m), d);  // the buffer moves on: d stays valid
      if (!s.ok()) RETURN_IF_ERROR(ReplyError(source, ReplyTag(d.kind), d.step, s));
      continue;
    }
    s = Handle(m->source, d);
    if (!s.ok()) RETURN_IF_ERROR(ReplyError(m->source, ReplyTag(d.kind), d.step, s));
    t_->Recycle(std::move(m->payload));  // a later message may reuse its memory
  }
  FinishApply();
  if (!failed_.ok()) return failed_;
  for (const auto& p : pending_)
    if (p.has_value())
      return Status::FailedPrecondition("server " + std::to_string(me_) +
                                        ": workers shut down in the middle of a BSP step");
  return Status::OK();
}

Status Server::TimeoutError(const Status& recv) const {
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
      (bsp_wait ? "the rest of a BSP step's pushes" : "worker requests") + " from " + waiting +
      (recv.message().rfind(kStuckWaitMessage, 0) == 0 ? " (" + recv.message() + ")" : ""));
}

Status Server::ReplyError(int dest, int tag, uint32_t step, const Status& s) {
  const std::string text = opt_.layout.Describe(t_->rank()) + ": " + s.ToString();
  spdlog::warn("{}", text);
  return t_->Send(dest, Channel::kWorker, tag, TextMessage(MessageKind::kError, step, text));
}

StatusOr<Server::Table*> Server::GetTable(const WireSlice& s) {
  auto it = tables_.find(s.table);
  if (it == tables_.end())
    return Status::NotFound("table " + std::to_string(s.table) + " was not declared");
  if (s.width != it->second.config.dim)
    return Status::Corruption("table " + std::to_string(s.table) + " has width " +
                              std::to_string(it->second.config.dim) + ", message says " +
                              std::to_string(s.width));
  return &it->second;
}

Status Server::CheckOwned(const WireSlice& s) {
  for (size_t i = 0; i < s.n; ++i)
    if (local_shard_[opt_.layout.ShardOfKey(s.keys[i])] < 0) return NotOurs(s, s.keys[i]);
  return Status::OK();
}

Status Server::NotOurs(const WireSlice& s, Key key) const {
  const uint32_t v = opt_.layout.ShardOfKey(key);
  return Status::InvalidArgument("key " + std::to_string(key) + " of table " +
                                 std::to_string(s.table) + " belongs to server " +
                                 std::to_string(opt_.layout.ServerOfShard(v)) +
                                 ", not this one");
}

Status Server::Group(const WireSlice& s, Grouping* g) {
  const size_t nshards = stores_.size();
  shard_of_.resize(s.n);
  g->begin.assign(nshards + 1, 0);
  bool sorted = true;
  int32_t prev = 0;
  for (size_t i = 0; i < s.n; ++i) {
    const uint32_t v = opt_.layout.ShardOfKey(s.keys[i]);
    const int32_t local = local_shard_[v];
    if (local < 0) return NotOurs(s, s.keys[i]);
    shard_of_[i] = static_cast<uint32_t>(local);
    ++g->begin[local + 1];
    sorted &= local >= prev;
    prev = local;
  }
  for (size_t k = 0; k < nshards; ++k) g->begin[k + 1] += g->begin[k];
  g->sorted = sorted;
  if (sorted) {
    g->key_ptr = s.keys;
    return Status::OK();
  }
  g->order.resize(s.n);
  g->keys.resize(s.n);
  cursor_.assign(g->begin.begin(), g->begin.end() - 1);
  for (size_t i = 0; i < s.n; ++i) {
    const uint32_t pos = cursor_[shard_of_[i]]++;
    g->order[pos] = static_cast<uint32_t>(i);
    g->keys[pos] = s.keys[i];
  }
  g->key_ptr = g->keys.data();
  return Status::OK();
}

template <typename Fn>
Status Server::ForEachShard(const Grouping& g, size_t n, Fn&& fn) {
  const int shards = static_cast<int>(g.begin.size()) - 1;
  if (!pool_ || n < kServerThreadedKeys || shards < 2) {
    for (int k = 0; k < shards; ++k)
      if (g.begin[k] < g.begin[k + 1]) RETURN_IF_ERROR(fn(k, g.begin[k], g.begin[k + 1]));
    return Status::OK();
  }
  return pool_->Run(static_cast<size_t>(shards), [&](size_t k) {
    return g.begin[k] < g.begin[k + 1] ? fn(static_cast<int>(k), g.begin[k], g.begin[k + 1])
                                       : Status::OK();
  });
}

Status Server::Handle(int source, const DecodedMessage& d) {
  switch (d.kind) {
    case MessageKind::kDeclare: return Declare(source, d);
    case MessageKind::kPull: return Pull(source, d);
    case MessageKind::kScan: return Scan(source, d);
    case MessageKind::kLoad: return Load(source, d);
    case MessageKind::kSaveShards: return SaveShards(source, d);
    case MessageKind::kLoadShards: return LoadShards(source, d);
    case MessageKind::kStats: return Stats(source);
    case MessageKind::kRewrite: return Rewrite(source, d);
    case MessageKind::kEntryHistogram: return EntryHistogram(source, d);
    case MessageKind::kPruneEntries: return PruneEntries(source, d);
    case MessageKind::kDropTables: return DropTables(source, d);
    default:
      return Status::InvalidArgument(std::string("unexpected request kind ") +
                                     MessageKindName(d.kind));
  }
}

Status Server::Declare(int source, const DecodedMessage& d) {
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
    const storage::TableSpec spec = TableSpecOf(tc, *optimizer);
    for (auto& store : stores_)
      RETURN_IF_ERROR_CTX(store->CreateTable(spec), "declaring table " + std::to_string(tc.table_id));
    tables_[tc.table_id] = Table{tc, std::move(optimizer), spec};
  }
  return t_->Send(source, Channel::kWorker, kTagControl, TextMessage(MessageKind::kAck, 0, ""));
}

Status Server::Pull(int source, const DecodedMessage& d) {
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
    // Keys already shard by shard: each shard's rows go straight into the
    // reply. Otherwise into a buffer in grouped order, then to key order.
    float* rows = out;
    if (!group_.sorted) {
      rows_.resize(s.n * s.width);
      rows = rows_.data();
    }
    RETURN_IF_ERROR(ForEachShard(group_, s.n, [&](int k, uint32_t lo, uint32_t hi) {
      return stores_[k]->Lookup(s.table, group_.key_ptr + lo, hi - lo,
                                rows + size_t{lo} * s.width, s.width, training);
    }));
    if (!group_.sorted) ScatterRows(rows_.data(), group_.order.data(), s.n, s.width, out);
  }
  return t_->Send(source, Channel::kWorker, kTagPullReply, b.Take());
}

Status Server::ApplySlice(const WireSlice& s, uint32_t step) {
  ASSIGN_OR_RETURN(Table * t, GetTable(s));
  if (!s.keys || !s.data) return Status::Corruption("push slice without keys or gradients");
  RETURN_IF_ERROR(Group(s, &group_));
  const int dim = s.width;
  const SparseOptimizer* opt = t->optimizer.get();
  const Grouping& g = group_;
  return ForEachShard(g, s.n, [&](int k, uint32_t lo, uint32_t hi) {
    return stores_[k]->Modify(s.table, g.key_ptr + lo, hi - lo, step, [&](size_t i, float* row) {
      opt->Apply(row, s.data + size_t{g.at(lo + i)} * dim, dim);
    });
  });
}

Status Server::AppliedPushFailed(const Status& s, uint32_t step) const {
  return s.WithContext(opt_.layout.Describe(t_->rank()) + " failed to apply the acknowledged push of step " +
                       std::to_string(step));
}

Status Server::CheckPushSlice(const WireSlice& s) {
  ASSIGN_OR_RETURN(Table * t, GetTable(s));
  (void)t;
  if (!s.keys || !s.data) return Status::Corruption("push slice without keys or gradients");
  return CheckOwned(s);
}

Status Server::AckThenApplyPush(Message m, const DecodedMessage& d) {
  for (const WireSlice& s : d.slices) RETURN_IF_ERROR(CheckPushSlice(s));
  RETURN_IF_ERROR(t_->Send(m.source, Channel::kWorker, kTagPushAck,
                           TextMessage(MessageKind::kAck, d.step, "")));
  size_t keys = 0;
  for (const WireSlice& s : d.slices) keys += s.n;
  applying_.push_back(std::move(m));
  StartApply(keys, [this, d] {
    for (const WireSlice& s : d.slices) {
      Status st = ApplySlice(s, d.step);
      if (!st.ok()) return AppliedPushFailed(st, d.step);
    }
    return Status::OK();
  });
  return Status::OK();
}

void Server::StartApply(size_t keys, std::function<Status()> fn) {
  if (keys < kServerThreadedKeys) {
    Status s = fn();
    if (!s.ok() && failed_.ok()) failed_ = s;
    return;
  }
  apply_.Start(std::move(fn));
}

void Server::FinishApply() {
  Status s = apply_.Wait();
  if (!s.ok() && failed_.ok()) failed_ = s;
  for (Message& m : applying_) t_->Recycle(std::move(m.payload));
  applying_.clear();
}

BackgroundJob::~BackgroundJob() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackgroundJob::Start(std::function<Status()> job) {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  std::lock_guard<std::mutex> lock(mu_);
  job_ = std::move(job);
  running_ = true;
  result_ = Status::OK();
  cv_.notify_all();
}

Status BackgroundJob::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !running_; });
  return result_;
}

void BackgroundJob::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || (running_ && job_); });
    if (stop_ && !running_) return;
    std::function<Status()> job = std::move(job_);
    job_ = nullptr;
    lock.unlock();
    Status s = job ? job() : Status::OK();
    lock.lock();
    result_ = s;
    running_ = false;
    cv_.notify_all();
  }
}

Status Server::HoldBspPush(int w, Message m) {
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
  // The step is acknowledged once every push in it is valid, then applied
  // before this server reads its next request: no worker's next pull can be
  // answered before it, and the workers go on while it is applied.
  Status s = CheckBspStep();
  for (size_t i = 0; i < pending_.size(); ++i) {
    const int rank = opt_.layout.worker_ranks[i];
    if (s.ok()) {
      RETURN_IF_ERROR(t_->Send(rank, Channel::kWorker, kTagPushAck,
                               TextMessage(MessageKind::kAck, pending_step_, "")));
    } else {
      RETURN_IF_ERROR(ReplyError(rank, kTagPushAck, pending_step_, s));
    }
  }
  size_t keys = 0;
  for (auto& p : pending_) {
    if (s.ok()) {
      DecodedMessage d;
      if (DecodeMessage(&p->payload, &d).ok())
        for (const WireSlice& sl : d.slices) keys += sl.n;
      applying_.push_back(std::move(*p));
    } else {
      t_->Recycle(std::move(p->payload));
    }
    p.reset();
  }
  if (s.ok()) {
    const uint32_t step = pending_step_;
    StartApply(keys, [this, step] {
      Status applied = ApplyBspStep(applying_, step);
      return applied.ok() ? applied : AppliedPushFailed(applied, step);
    });
  }
  return Status::OK();
}

Status Server::CheckBspStep() {
  for (auto& p : pending_) {
    DecodedMessage d;
    RETURN_IF_ERROR(DecodeMessage(&p->payload, &d));
    for (const WireSlice& s : d.slices) RETURN_IF_ERROR(CheckPushSlice(s));
  }
  return Status::OK();
}

Status Server::ApplyBspStep(std::vector<Message>& pushes, uint32_t step) {
  std::vector<DecodedMessage> ds(pushes.size());
  std::map<int, std::vector<const WireSlice*>> by_table;  // in worker order
  for (size_t w = 0; w < pushes.size(); ++w) {
    RETURN_IF_ERROR(DecodeMessage(&pushes[w].payload, &ds[w]));
    for (const WireSlice& s : ds[w].slices) {
      ASSIGN_OR_RETURN(Table * t, GetTable(s));
      (void)t;
      if (!s.keys || !s.data) return Status::Corruption("push slice without keys or gradients");
      by_table[s.table].push_back(&s);
    }
  }
  for (auto& [table, slices] : by_table) {
    if (slices.size() == 1) {
      RETURN_IF_ERROR(ApplySlice(*slices[0], step));
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
    RETURN_IF_ERROR(ApplySlice(merged, step));
  }
  return Status::OK();
}

}  // namespace internal


StatusOr<std::unique_ptr<ParameterServer>> NewParameterServer(ServerOptions options,
                                                              Transport* transport) {
  auto s = std::make_unique<internal::Server>(std::move(options), transport);
  RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<ParameterServer>(std::move(s));
}

}  // namespace ctrps::ps
