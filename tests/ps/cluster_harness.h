// A whole parameter-server cluster as threads over the in-process
// transport, for the cluster tests: S servers and W workers running the same
// steps (Zipf-ish keys overlapping between workers, gradients that depend on
// the step, the worker and the key), and the same steps on one local client
// to compare with, bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "ps/client.h"
#include "ps/layout.h"
#include "ps/remote_client.h"
#include "ps/server.h"
#include "ps/transport.h"
#include "ps/worker_group.h"

namespace ctrps::ps::cluster_testing {

inline constexpr int kTables = 3;
inline constexpr int kDim = 5;

inline std::vector<TableConfig> Tables() {
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
inline StepData MakeStep(int step, int worker, bool by_shard = false, int n = 40) {
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

inline Snapshot Scan(EmbeddingClient* c) {
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

inline ClusterRun RunCluster(int servers, int workers, Consistency mode, int steps, bool colocated = false,
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
inline ClusterRun RunLocal(int workers, int steps, const AfterSteps& after = nullptr, int keys_per_step = 40) {
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
inline void ExpectSameStats(const ClusterRun& remote, const ClusterRun& local, int servers) {
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

}  // namespace ctrps::ps::cluster_testing
