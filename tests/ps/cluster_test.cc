// A whole parameter-server cluster as threads over the in-process transport:
// servers, remote clients and worker collectives against the local client.
#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/layout.h"
#include "ps/remote_client.h"
#include "ps/entry_select.h"
#include "ps/server.h"
#include "ps/table_rewrite.h"
#include "ps/transport.h"
#include "ps/wire.h"
#include "ps/worker_group.h"

namespace ctrps::ps {
namespace {

constexpr int kTables = 3;
constexpr int kDim = 5;

std::vector<TableConfig> Tables() {
  std::vector<TableConfig> t;
  for (int i = 0; i < kTables; ++i) {
    TableConfig tc;
    tc.table_id = i;
    tc.dim = kDim;
    tc.zero_prefix = 1;
    tc.init_seed = 7;
    tc.optimizer.type = i == 0 ? SparseOptimizerType::kAdam
                       : i == 1 ? SparseOptimizerType::kAdagrad : SparseOptimizerType::kFTRL;
    tc.optimizer.learning_rate = 0.05f;
    t.push_back(tc);
  }
  return t;
}

// One worker's step: unique keys per table (Zipf-ish, overlapping between
// workers) and gradients that depend on the step, the worker and the key.
struct StepData {
  std::vector<std::vector<Key>> keys;
  std::vector<std::vector<float>> grads, rows;
  std::vector<TableSlice> Slices(bool grads_not_rows) {
    std::vector<TableSlice> s;
    for (int t = 0; t < kTables; ++t)
      s.push_back({t, keys[t].data(), keys[t].size(),
                   grads_not_rows ? grads[t].data() : rows[t].data()});
    return s;
  }
};

// by_shard: each table's keys ordered by virtual shard (of 8), as the
// trainer sends them; otherwise first-seen order (the server regroups).
// n: draws per table (keys repeat, so a little fewer are unique).
StepData MakeStep(int step, int worker, bool by_shard = false, int n = 40) {
  std::mt19937_64 rng(step * 1000 + worker);
  StepData d;
  d.keys.resize(kTables);
  d.grads.resize(kTables);
  d.rows.resize(kTables);
  for (int t = 0; t < kTables; ++t) {
    std::map<Key, bool> seen;
    for (int i = 0; i < n; ++i) {
      uint64_t r = rng() % (5 * n);
      Key k = MakeKey(t, r * r / (n + n / 4));
      if (!seen[k]) {
        seen[k] = true;
        d.keys[t].push_back(k);
      }
    }
    if (by_shard)
      std::stable_sort(d.keys[t].begin(), d.keys[t].end(),
                       [](Key a, Key b) { return VirtualShardOf(a, 8) < VirtualShardOf(b, 8); });
    for (Key k : d.keys[t])
      for (int c = 0; c < kDim; ++c)
        d.grads[t].push_back(std::sin(0.1f * step + 0.7f * worker + 0.01f * (k & 0xffff) + c));
    d.rows[t].assign(d.keys[t].size() * kDim, -1.0f);
  }
  return d;
}

using Snapshot = std::map<std::pair<int, Key>, std::vector<float>>;

Snapshot Scan(EmbeddingClient* c) {
  Snapshot s;
  for (int t = 0; t < kTables; ++t)
    EXPECT_TRUE(c->ScanRows(t, [&](Key k, const float* r) {
      s[{t, k}] = std::vector<float>(r, r + c->Width(t));
      return true;
    }).ok());
  return s;
}

// S servers and W workers on threads; every worker runs `steps` steps of
// pull (checked against `pulled`, if given) then push.
struct ClusterRun {
  Snapshot final_rows;
  std::vector<storage::TableStats> stats;  // at the end, through worker 0's client
  std::vector<std::vector<std::vector<float>>> pulled;  // [step][worker] concatenated rows
};

// Worker 0's work after the steps, before the final scan (e.g. a rewrite).
using AfterSteps = std::function<Status(EmbeddingClient*)>;

ClusterRun RunCluster(int servers, int workers, Consistency mode, int steps, bool colocated = false,
                      bool by_shard = false, const AfterSteps& after = nullptr,
                      int server_threads = 1, int keys_per_step = 40) {
  auto layout = ClusterLayout::Make(colocated ? workers : servers + workers,
                                    colocated ? 0 : servers, colocated, 8);
  EXPECT_TRUE(layout.ok()) << layout.status().ToString();
  auto net = NewInProcessNetwork(layout->world_size);
  std::vector<std::thread> threads;
  std::vector<Status> server_status(layout->num_servers());
  for (int s = 0; s < layout->num_servers(); ++s) {
    threads.emplace_back([&, s] {
      ServerOptions o;
      o.layout = *layout;
      o.consistency = mode;
      o.peer_timeout_ms = 20000;
      o.threads = server_threads;
      auto server = NewParameterServer(o, net->Endpoint(layout->server_ranks[s]));
      server_status[s] = server.ok() ? (*server)->Run() : server.status();
    });
  }
  ClusterRun run;
  run.pulled.assign(steps, std::vector<std::vector<float>>(workers));
  std::vector<Status> worker_status(workers);
  std::atomic<int> flushed{0};
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      RemoteClientOptions o;
      o.layout = *layout;
      o.consistency = mode;
      o.peer_timeout_ms = 20000;
      auto client = NewRemoteClient(o, net->Endpoint(layout->worker_ranks[w]));
      Status st = client->DeclareTables(Tables());
      for (int step = 0; step < steps && st.ok(); ++step) {
        StepData d = MakeStep(step, w, by_shard, keys_per_step);
        st = client->Pull(d.Slices(false), true);
        for (auto& r : d.rows) run.pulled[step][w].insert(run.pulled[step][w].end(), r.begin(), r.end());
        if (st.ok()) st = client->Push(d.Slices(true), step + 1);
      }
      if (st.ok()) st = client->Flush();
      // Worker 0 scans once every worker's pushes are applied (asynchronous
      // modes would otherwise race with the slower workers).
      ++flushed;
      while (w == 0 && flushed.load() < workers) std::this_thread::yield();
      if (st.ok() && w == 0 && after) st = after(client.get());
      if (st.ok() && w == 0) run.final_rows = Scan(client.get());
      if (st.ok() && w == 0) {
        auto stats = client->TableStats();
        st = stats.status();
        if (st.ok()) run.stats = *stats;
      }
      if (st.ok()) st = client->Shutdown();
      worker_status[w] = st;
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : server_status) EXPECT_TRUE(s.ok()) << s.ToString();
  for (const Status& s : worker_status) EXPECT_TRUE(s.ok()) << s.ToString();
  return run;
}

// The same steps on one local client, each step's gradients summed over
// the workers in worker order (what a BSP server does).
ClusterRun RunLocal(int workers, int steps, const AfterSteps& after = nullptr, int keys_per_step = 40) {
  auto store = storage::NewMemoryStore();
  auto client = NewLocalClient(store.get());
  EXPECT_TRUE(client->DeclareTables(Tables()).ok());
  ClusterRun run;
  run.pulled.assign(steps, std::vector<std::vector<float>>(workers));
  for (int step = 0; step < steps; ++step) {
    std::map<std::pair<int, Key>, std::vector<float>> sum;
    std::vector<std::vector<Key>> order(kTables);
    for (int w = 0; w < workers; ++w) {
      StepData d = MakeStep(step, w, false, keys_per_step);
      EXPECT_TRUE(client->Pull(d.Slices(false), true).ok());
      for (auto& r : d.rows) run.pulled[step][w].insert(run.pulled[step][w].end(), r.begin(), r.end());
      for (int t = 0; t < kTables; ++t)
        for (size_t i = 0; i < d.keys[t].size(); ++i) {
          auto& acc = sum[{t, d.keys[t][i]}];
          const float* g = &d.grads[t][i * kDim];
          if (acc.empty()) {
            acc.assign(g, g + kDim);
            order[t].push_back(d.keys[t][i]);
          } else {
            for (int c = 0; c < kDim; ++c) acc[c] += g[c];
          }
        }
    }
    for (int t = 0; t < kTables; ++t) {
      std::vector<float> g;
      for (Key k : order[t]) g.insert(g.end(), sum[{t, k}].begin(), sum[{t, k}].end());
      EXPECT_TRUE(client->Push({{t, order[t].data(), order[t].size(), g.data()}}, step + 1).ok());
    }
  }
  if (after) {
    EXPECT_TRUE(after(client.get()).ok());
  }
  run.final_rows = Scan(client.get());
  auto stats = client->TableStats();
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  if (stats.ok()) run.stats = *stats;
  return run;
}

// Table counters summed over the servers equal the single store's.
void ExpectSameStats(const ClusterRun& remote, const ClusterRun& local, int servers) {
  ASSERT_EQ(remote.stats.size(), static_cast<size_t>(kTables)) << servers << " servers";
  ASSERT_EQ(local.stats.size(), static_cast<size_t>(kTables));
  for (int t = 0; t < kTables; ++t) {
    const storage::TableStats &r = remote.stats[t], &l = local.stats[t];
    EXPECT_EQ(r.table_id, t);
    EXPECT_EQ(r.rows, l.rows) << "table " << t << ", " << servers << " servers";
    EXPECT_EQ(r.created, l.created) << "table " << t << ", " << servers << " servers";
    EXPECT_EQ(r.lookups, l.lookups) << "table " << t << ", " << servers << " servers";
    EXPECT_GT(r.rows, 0u);
    size_t rows = 0;
    for (const auto& [tk, row] : local.final_rows) rows += tk.first == t;
    EXPECT_EQ(r.rows, rows) << "table " << t;
  }
}

TEST(ClusterTest, OneServerOneWorkerEqualsLocalClientBitForBit) {
  ClusterRun local = RunLocal(1, 6);
  ClusterRun remote = RunCluster(1, 1, Consistency::kBSP, 6);
  EXPECT_EQ(remote.pulled, local.pulled);
  EXPECT_EQ(remote.final_rows, local.final_rows);
  EXPECT_GT(local.final_rows.size(), 100u);
}

TEST(ClusterTest, BspIsIndependentOfServerCountAndMatchesOrderedSum) {
  ClusterRun local = RunLocal(2, 5);
  for (int servers : {1, 2, 3}) {
    ClusterRun remote = RunCluster(servers, 2, Consistency::kBSP, 5);
    EXPECT_EQ(remote.final_rows, local.final_rows) << servers << " servers";
    EXPECT_EQ(remote.pulled, local.pulled) << servers << " servers";
    ExpectSameStats(remote, local, servers);
  }
}

// A server's threads (one shard per thread, for requests of thousands of
// keys) change nothing: the same rows pulled and the same model as one
// thread and as the local client, with the keys in shard order or not, in
// BSP (2 workers, 1 and 2 servers) and ASP.
TEST(ClusterTest, ServerThreadsGiveTheSameRowsAndModel) {
  // More unique keys a table than kServerThreadedKeys: the server's threaded
  // path (a slice split over its threads) and background apply.
  constexpr int kSteps = 3, kKeys = 24000;
  EXPECT_GT(MakeStep(0, 0, false, kKeys).keys[0].size(), kServerThreadedKeys);
  ClusterRun local = RunLocal(2, kSteps, nullptr, kKeys);
  for (int servers : {1, 2})
    for (bool by_shard : {false, true}) {
      ClusterRun remote =
          RunCluster(servers, 2, Consistency::kBSP, kSteps, false, by_shard, nullptr, 4, kKeys);
      EXPECT_EQ(remote.final_rows, local.final_rows) << servers << " servers, by_shard " << by_shard;
      if (!by_shard) {
        EXPECT_EQ(remote.pulled, local.pulled) << servers << " servers";
      }
    }
  ClusterRun one = RunLocal(1, kSteps, nullptr, kKeys);
  ClusterRun asp = RunCluster(1, 1, Consistency::kASP, kSteps, false, false, nullptr, 3, kKeys);
  EXPECT_EQ(asp.final_rows, one.final_rows);
  EXPECT_EQ(asp.pulled, one.pulled);
}

// Keys sent shard by shard take the server's no-regrouping path: the same
// rows pulled for every key, the same model at the end.
TEST(ClusterTest, ShardOrderedKeysGiveTheSameRowsAsUnordered) {
  constexpr int kSteps = 6;
  for (auto [servers, workers] : {std::pair{1, 1}, {2, 1}, {1, 2}, {2, 2}}) {
    ClusterRun plain = RunCluster(servers, workers, Consistency::kBSP, kSteps);
    ClusterRun ordered = RunCluster(servers, workers, Consistency::kBSP, kSteps, false, true);
    EXPECT_TRUE(plain.final_rows == ordered.final_rows) << servers << " servers, " << workers << " workers";
    for (int step = 0; step < kSteps; ++step) {
      for (int w = 0; w < workers; ++w) {
        std::map<std::pair<int, Key>, std::vector<float>> a, b;
        for (auto [run, by_shard, out] : {std::make_tuple(&plain, false, &a),
                                          std::make_tuple(&ordered, true, &b)}) {
          const StepData d = MakeStep(step, w, by_shard);
          size_t at = 0;
          for (int t = 0; t < kTables; ++t)
            for (Key k : d.keys[t]) {
              const float* r = run->pulled[step][w].data() + at;
              (*out)[{t, k}] = std::vector<float>(r, r + kDim);
              at += kDim;
            }
        }
        EXPECT_TRUE(a == b) << "pulled rows differ at step " << step << ", worker " << w;
      }
    }
    bool reordered = false;
    const StepData x = MakeStep(0, 0), y = MakeStep(0, 0, true);
    for (int t = 0; t < kTables; ++t) reordered |= x.keys[t] != y.keys[t];
    EXPECT_TRUE(reordered) << "the test keys were already in shard order";
  }
}

TEST(ClusterTest, ColocatedRanksServeAndTrain) {
  ClusterRun local = RunLocal(2, 4);
  ClusterRun remote = RunCluster(0, 2, Consistency::kBSP, 4, /*colocated=*/true);
  EXPECT_EQ(remote.final_rows, local.final_rows);
}

TEST(ClusterTest, AsyncModesApplyEveryPush) {
  for (Consistency mode : {Consistency::kASP, Consistency::kSSP}) {
    ClusterRun remote = RunCluster(2, 2, mode, 5);
    ClusterRun local = RunLocal(2, 5);
    ASSERT_EQ(remote.final_rows.size(), local.final_rows.size()) << ConsistencyName(mode);
    // Same rows, updated (values differ from BSP: each push is applied alone).
    for (const auto& [k, v] : local.final_rows) EXPECT_EQ(remote.final_rows.count(k), 1u);
  }
}

TEST(ClusterTest, MalformedRequestGetsAnErrorAndTheServerKeepsServing) {
  auto layout = ClusterLayout::Make(2, 1, false, 4);
  ASSERT_TRUE(layout.ok());
  auto net = NewInProcessNetwork(2);
  Status server_status;
  std::thread server([&] {
    ServerOptions o;
    o.layout = *layout;
    o.peer_timeout_ms = 10000;
    auto s = NewParameterServer(o, net->Endpoint(0));
    server_status = s.ok() ? (*s)->Run() : s.status();
  });
  Transport* worker = net->Endpoint(1);
  RemoteClientOptions o;
  o.layout = *layout;
  o.peer_timeout_ms = 10000;
  auto client = NewRemoteClient(o, worker);
  ASSERT_TRUE(client->DeclareTables(Tables()).ok());
  // A pull truncated by 8 bytes.
  MessageBuilder b(MessageKind::kPull, kFlagTraining, 0);
  b.AddSlice(0, kDim, 4, true, false);
  b.Finish();
  std::vector<char> bytes = b.Take();
  bytes.resize(bytes.size() - 8);
  ASSERT_TRUE(worker->Send(0, Channel::kServer, kTagRequest, bytes).ok());
  auto reply = worker->Recv(Channel::kWorker, 0, kTagPullReply, 10000);
  ASSERT_TRUE(reply.ok());
  DecodedMessage d;
  ASSERT_TRUE(DecodeMessage(&reply->payload, &d).ok());
  EXPECT_EQ(d.kind, MessageKind::kError);
  EXPECT_NE(std::string(d.blob, d.blob_bytes).find("truncated"), std::string::npos);
  // A pull of an undeclared table is an error Status on the worker.
  std::vector<Key> keys = {MakeKey(9, 1)};
  std::vector<float> rows(kDim);
  EXPECT_EQ(client->Pull({{9, keys.data(), 1, rows.data()}}, true).code(), Status::Code::kNotFound);
  // A wrong width reaches the server and comes back as its error.
  MessageBuilder wrong(MessageKind::kPull, 0, 0);
  wrong.AddSlice(0, kDim + 1, 1, true, false);
  wrong.Finish();
  *wrong.keys(0) = MakeKey(0, 3);
  ASSERT_TRUE(worker->Send(0, Channel::kServer, kTagRequest, wrong.Take()).ok());
  reply = worker->Recv(Channel::kWorker, 0, kTagPullReply, 10000);
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(DecodeMessage(&reply->payload, &d).ok());
  EXPECT_EQ(d.kind, MessageKind::kError);
  // Still serving.
  keys = {MakeKey(0, 1)};
  EXPECT_TRUE(client->Pull({{0, keys.data(), 1, rows.data()}}, true).ok());
  EXPECT_TRUE(client->Shutdown().ok());
  server.join();
  EXPECT_TRUE(server_status.ok()) << server_status.ToString();
}

// A memory store whose Modify fails once `fail` is set (a disk failing).
class FailingModifyStore final : public storage::EmbeddingStore {
 public:
  explicit FailingModifyStore(std::atomic<bool>* fail) : fail_(fail) {}
  Status CreateTable(const storage::TableSpec& spec) override { return base_->CreateTable(spec); }
  std::vector<storage::TableSpec> Tables() const override { return base_->Tables(); }
  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats, bool create) override {
    return base_->Lookup(table, keys, n, out, out_floats, create);
  }
  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    if (fail_->load()) return Status::IOError("disk on fire");
    return base_->Modify(table, keys, n, step, fn);
  }
  Status Scan(int table, const ScanFn& fn) const override { return base_->Scan(table, fn); }
  Status Put(int table, const Key* keys, size_t n, const float* rows,
             const storage::RowStats* stats) override {
    return base_->Put(table, keys, n, rows, stats);
  }
  Status DropTable(int table) override { return base_->DropTable(table); }
  Status Flush() override { return base_->Flush(); }
  StatusOr<storage::TableStats> Stats(int table) const override { return base_->Stats(table); }

 private:
  std::unique_ptr<storage::EmbeddingStore> base_ = storage::NewMemoryStore();
  std::atomic<bool>* fail_;
};

// Pushes are acknowledged on arrival and applied before the server reads
// its next request (BSP and ASP): a pull sent right after the ack sees the
// push; a push with one bad slice is refused whole (nothing applied); a
// store failing on an acknowledged push fails the server, naming it.
TEST(ClusterTest, PushesAreAckedThenAppliedBeforeTheNextRequest) {
  for (Consistency mode : {Consistency::kBSP, Consistency::kASP}) {
    auto layout = ClusterLayout::Make(2, 1, false, 4);
    ASSERT_TRUE(layout.ok());
    auto net = NewInProcessNetwork(2);
    std::atomic<bool> fail{false};
    Status server_status;
    std::thread server([&] {
      ServerOptions o;
      o.layout = *layout;
      o.consistency = mode;
      o.peer_timeout_ms = 10000;
      o.new_store = [&fail](uint32_t) -> StatusOr<std::unique_ptr<storage::EmbeddingStore>> {
        return std::unique_ptr<storage::EmbeddingStore>(new FailingModifyStore(&fail));
      };
      auto s = NewParameterServer(o, net->Endpoint(0));
      server_status = s.ok() ? (*s)->Run() : s.status();
    });
    RemoteClientOptions o;
    o.layout = *layout;
    o.consistency = mode;
    o.peer_timeout_ms = 10000;
    auto client = NewRemoteClient(o, net->Endpoint(1));
    ASSERT_TRUE(client->DeclareTables(Tables()).ok());
    // Local twin: what the rows must be.
    auto store = storage::NewMemoryStore();
    auto local = NewLocalClient(store.get());
    ASSERT_TRUE(local->DeclareTables(Tables()).ok());
    std::vector<float> remote_rows, local_rows;
    // More keys a push (3 tables) than kServerThreadedKeys: applied on the
    // server's second thread while it reads the next request, the path under test.
    size_t pushed = 0;
    for (const auto& k : MakeStep(0, 0, false, 8000).keys) pushed += k.size();
    EXPECT_GT(pushed, kServerThreadedKeys);
    for (int step = 0; step < 4; ++step) {
      StepData d = MakeStep(step, 0, false, 8000);
      ASSERT_TRUE(client->Push(d.Slices(true), step + 1).ok());
      ASSERT_TRUE(local->Push(d.Slices(true), step + 1).ok());
      StepData r = MakeStep(step, 0, false, 8000), l = MakeStep(step, 0, false, 8000);
      ASSERT_TRUE(client->Pull(r.Slices(false), true).ok());  // right after the ack
      ASSERT_TRUE(local->Pull(l.Slices(false), true).ok());
      EXPECT_EQ(r.rows, l.rows) << "step " << step;
    }
    // Slice 1 names an undeclared table: refused, slice 0 not applied either.
    StepData d = MakeStep(9, 0, false, 50);
    std::vector<TableSlice> bad = d.Slices(true);
    bad[1].table = 77;
    EXPECT_EQ(client->Push(bad, 10).code(), Status::Code::kNotFound);
    StepData before = MakeStep(9, 0, false, 50), twin = MakeStep(9, 0, false, 50);
    ASSERT_TRUE(client->Pull(before.Slices(false), false).ok());
    ASSERT_TRUE(local->Pull(twin.Slices(false), false).ok());
    EXPECT_EQ(before.rows, twin.rows) << "a refused push changed rows";
    // The disk fails under an acknowledged push: the server stops with its name.
    // A push large enough to be applied on the second thread, over the
    // server's shard threads: the failure still reaches Run.
    fail = true;
    StepData big = MakeStep(10, 0, false, 8000);
    EXPECT_TRUE(client->Push(big.Slices(true), 11).ok());  // acknowledged before the failure
    // The server reports it when it reads its next request (here the shutdown).
    (void)client->Shutdown();
    server.join();
    EXPECT_EQ(server_status.code(), Status::Code::kIOError);
    EXPECT_NE(server_status.message().find("rank 0 (server 0) failed to apply the acknowledged push of step 11"),
              std::string::npos) << server_status.ToString();
    EXPECT_NE(server_status.message().find("disk on fire"), std::string::npos);
  }
}

TEST(ClusterTest, SilentServerIsATimeoutNamingItsRank) {
  auto layout = ClusterLayout::Make(3, 2, false, 4);
  ASSERT_TRUE(layout.ok());
  auto net = NewInProcessNetwork(3);
  std::thread server([&] {
    ServerOptions o;
    o.layout = *layout;
    o.peer_timeout_ms = 3000;
    auto s = NewParameterServer(o, net->Endpoint(0));
    Status st = (*s)->Run();
    EXPECT_EQ(st.code(), Status::Code::kUnavailable);  // the worker stopped talking
    EXPECT_NE(st.message().find("rank 2 (worker 0)"), std::string::npos) << st.ToString();
  });
  net->Silence(1);  // server 1 never answers
  RemoteClientOptions o;
  o.layout = *layout;
  o.peer_timeout_ms = 300;
  auto client = NewRemoteClient(o, net->Endpoint(2));
  Status st = client->DeclareTables(Tables());
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_NE(st.message().find("rank 1 (server 1)"), std::string::npos) << st.ToString();
  server.join();
}

TEST(WorkerGroupTest, AllreduceIsOrderedAndIdenticalEverywhere) {
  const int W = 3;
  auto net = NewInProcessNetwork(W);
  std::vector<std::vector<float>> data(W);
  std::vector<bool> agree(W), any_one(W), any_none(W);
  std::vector<std::thread> threads;
  for (int w = 0; w < W; ++w)
    threads.emplace_back([&, w] {
      WorkerGroup g(net->Endpoint(w), {0, 1, 2}, 5000);
      data[w] = {1e8f * (w == 0), 1.0f, 0.1f * (w + 1)};
      ASSERT_TRUE(g.AllreduceMean(data[w].data(), 3, "test").ok());
      auto all = g.AllTrue(w != 2, "test");
      ASSERT_TRUE(all.ok());
      agree[w] = *all;
      auto one = g.AnyTrue(w == 2, "test");  // true from one worker only
      auto none = g.AnyTrue(false, "test");
      ASSERT_TRUE(one.ok() && none.ok());
      any_one[w] = *one;
      any_none[w] = *none;
    });
  for (auto& t : threads) t.join();
  const float third = 1.0f / 3;
  EXPECT_EQ(data[0][0], ((1e8f + 0) + 0) * third);
  EXPECT_EQ(data[0][1], 1.0f * 3 * third);
  EXPECT_EQ(data[0][2], ((0.1f + 0.2f) + 0.3f) * third);
  for (int w = 1; w < W; ++w) EXPECT_EQ(data[w], data[0]);
  for (int w = 0; w < W; ++w) {
    EXPECT_FALSE(agree[w]);
    EXPECT_TRUE(any_one[w]);
    EXPECT_FALSE(any_none[w]);
  }
}

TEST(LayoutTest, ShardOfKeyIsVirtualShardOf) {
  std::mt19937_64 rng(3);
  for (int V : {1, 2, 3, 16, 64, 100, 1024, 65536}) {
    auto l = ClusterLayout::Make(2, 1, false, V);
    ASSERT_TRUE(l.ok());
    for (int i = 0; i < 20000; ++i) {
      const Key k = rng();
      ASSERT_EQ(l->ShardOfKey(k), VirtualShardOf(k, V)) << "V " << V;
    }
  }
}

TEST(LayoutTest, ImpossibleLayoutsAreRejected) {
  EXPECT_FALSE(ClusterLayout::Make(2, 2, false, 16).ok());  // no worker left
  EXPECT_FALSE(ClusterLayout::Make(2, 0, false, 16).ok());  // no server
  EXPECT_FALSE(ClusterLayout::Make(3, 2, true, 16).ok());   // colocated needs all ranks
  EXPECT_FALSE(ClusterLayout::Make(5, 4, false, 2).ok());   // more servers than shards
  auto l = ClusterLayout::Make(4, 2, false, 16);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->server_ranks, (std::vector<int>{0, 1}));
  EXPECT_EQ(l->worker_ranks, (std::vector<int>{2, 3}));
  EXPECT_EQ(l->Describe(3), "rank 3 (worker 1)");
  auto c = ClusterLayout::Make(2, 0, true, 16);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Describe(1), "rank 1 (server 1 + worker 1)");
}

// Hosts are named only when the ranks are on more than one.
TEST(LayoutTest, DescribeNamesTheHostWhenTheJobSpansSeveral) {
  auto l = ClusterLayout::Make(3, 2, false, 16);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->NumHosts(), 1);  // unknown
  l->hosts = {"node1", "node1", "node1"};
  EXPECT_EQ(l->NumHosts(), 1);
  EXPECT_EQ(l->Describe(1), "rank 1 (server 1)");
  l->hosts = {"node1", "node2", "node1"};
  EXPECT_EQ(l->NumHosts(), 2);
  EXPECT_EQ(l->Describe(1), "rank 1 (server 1 on node2)");
  EXPECT_EQ(l->Describe(2), "rank 2 (worker 0 on node1)");
  EXPECT_EQ(l->Describe(7), "rank 7 (no role)");  // no such rank: no host
}

// A compression stage's table rewrite (ps/table_rewrite.h) gives the same
// rows bit for bit on a local store and on 1 or 2 servers, and the servers
// keep serving the new width (a pull and a push after it).
TEST(ClusterTest, RewriteTableIsLayoutIndependent) {
  const std::string scratch = ::testing::TempDir() + "/rewrite_scratch";
  auto after = [&](EmbeddingClient* c) -> Status {
    RowBasisChange change;
    change.keep_prefix = 1;
    change.in_dim = kDim - 1;
    change.out_dim = 2;
    change.mean = {0.1, -0.2, 0.05, 0.3};
    change.basis = {0.5, -0.5, 0.5, -0.5, 0.7, 0.1, -0.1, 0.7};
    TableConfig nc = Tables()[0];
    nc.dim = 3;
    RETURN_IF_ERROR(c->RewriteTable(nc, &change, scratch));
    if (c->Width(0) != 3) return Status::Internal("width not updated");
    std::vector<Key> keys = {MakeKey(0, 1), MakeKey(0, 4), MakeKey(0, 777)};
    std::vector<float> rows(keys.size() * 3), grads(keys.size() * 3, 0.5f);
    RETURN_IF_ERROR(c->Pull({{0, keys.data(), keys.size(), rows.data()}}, true));
    RETURN_IF_ERROR(c->Push({{0, keys.data(), keys.size(), grads.data()}}, 100));
    return c->Flush();
  };
  const ClusterRun local = RunLocal(1, 4, after);
  ASSERT_FALSE(local.final_rows.empty());
  for (const auto& [key, row] : local.final_rows)
    if (key.first == 0) {
      ASSERT_EQ(row.size(), 3u);
    }
  for (int servers : {1, 2}) {
    const ClusterRun remote = RunCluster(servers, 1, Consistency::kBSP, 4, false, false, after);
    EXPECT_EQ(remote.final_rows, local.final_rows) << servers << " servers";
  }
}

// DeepLight's exact global selection: the magnitude histograms of the
// entries (linear weights skipped) and the pruning at a threshold are the
// same on a local store and on 1 or 2 servers; the histogram counts every
// entry once; persistent pruning keeps zeroed entries at 0 under pushes.
TEST(ClusterTest, EntryHistogramAndPruneAreLayoutIndependent) {
  const std::string scratch = ::testing::TempDir() + "/prune_scratch";
  struct Seen {
    std::vector<uint64_t> h0, h1;
    uint64_t zeroed = 0, entries = 0;
  };
  auto run = [&](Seen* seen) {
    return [&, seen](EmbeddingClient* c) -> Status {
      EntrySet set{{0, 1, 2}, {1, 1, 1}};
      for (int t = 0; t < kTables; ++t)
        RETURN_IF_ERROR(c->ScanRows(t, [&](Key, const float*) {
          seen->entries += kDim - 1;
          return true;
        }));
      ASSIGN_OR_RETURN(seen->h0, c->EntryHistogram(set, 0, 0));
      // The bucket holding the median entry, refined.
      uint64_t total = 0, k = 0, cum = 0;
      for (uint64_t v : seen->h0) total += v;
      uint32_t b = 0;
      for (; b < seen->h0.size(); ++b) {
        if (cum + seen->h0[b] >= total / 2) break;
        cum += seen->h0[b];
      }
      ASSIGN_OR_RETURN(seen->h1, c->EntryHistogram(set, 1, b));
      uint64_t under = 0;
      for (uint64_t v : seen->h1) under += v;
      if (under != seen->h0[b]) return Status::Internal("level 1 does not refine level 0");
      (void)k;
      const uint32_t max_bits = (b << 16) | 0xffffu;
      ASSIGN_OR_RETURN(seen->zeroed, c->PruneEntries(set, max_bits, true, scratch));
      // Pushes after a persistent prune (Adam, Adagrad and FTRL tables):
      // entries at 0 get zero gradients and stay 0.
      for (int t = 0; t < kTables; ++t) {
        std::vector<Key> keys = {MakeKey(t, 1), MakeKey(t, 4), MakeKey(t, 9)};
        std::vector<float> rows(keys.size() * kDim), grads(keys.size() * kDim);
        RETURN_IF_ERROR(c->Pull({{t, keys.data(), keys.size(), rows.data()}}, true));
        for (size_t i = 0; i < grads.size(); ++i) grads[i] = rows[i] == 0.0f ? 0.0f : 0.3f;
        for (int rep = 0; rep < 3; ++rep)
          RETURN_IF_ERROR(c->Push({{t, keys.data(), keys.size(), grads.data()}}, 100 + rep));
        RETURN_IF_ERROR(c->Flush());
        std::vector<float> after(rows.size());
        RETURN_IF_ERROR(c->Pull({{t, keys.data(), keys.size(), after.data()}}, true));
        for (size_t i = 0; i < rows.size(); ++i)
          if (rows[i] == 0.0f && after[i] != 0.0f)
            return Status::Internal("a pruned entry of table " + std::to_string(t) + " regrew");
      }
      return Status::OK();
    };
  };
  Seen local_seen;
  const ClusterRun local = RunLocal(1, 4, run(&local_seen));
  uint64_t counted = 0;
  for (uint64_t v : local_seen.h0) counted += v;
  EXPECT_EQ(counted, local_seen.entries);
  EXPECT_GT(local_seen.zeroed, local_seen.entries / 4);
  uint64_t zeros = 0;
  for (const auto& [key, row] : local.final_rows)
    for (size_t i = 1; i < row.size(); ++i) zeros += row[i] == 0.0f;
  EXPECT_GE(zeros, local_seen.zeroed);
  for (int servers : {1, 2, 3}) {
    Seen seen;
    const ClusterRun remote = RunCluster(servers, 1, Consistency::kBSP, 4, false, false, run(&seen));
    EXPECT_EQ(seen.h0, local_seen.h0) << servers << " servers";
    EXPECT_EQ(seen.h1, local_seen.h1) << servers << " servers";
    EXPECT_EQ(seen.zeroed, local_seen.zeroed) << servers << " servers";
    EXPECT_EQ(remote.final_rows, local.final_rows) << servers << " servers";
  }
}

}  // namespace
}  // namespace ctrps::ps
