// A whole parameter-server cluster as threads over the in-process transport
// (cluster_harness.h): servers, remote clients and worker collectives give
// the local client's model bit for bit, for any server count, thread count,
// key order and consistency mode; table rewrites and DeepLight's entry
// selection are layout-independent. Failures: cluster_fault_test.cc.
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/entry_select.h"
#include "ps/table_rewrite.h"
#include "tests/ps/cluster_harness.h"

namespace ctrps::ps {
namespace {

using cluster_testing::ClusterRun;
using cluster_testing::ExpectSameStats;
using cluster_testing::kDim;
using cluster_testing::kTables;
using cluster_testing::MakeStep;
using cluster_testing::RunCluster;
using cluster_testing::RunLocal;
using cluster_testing::Scan;
using cluster_testing::Snapshot;
using cluster_testing::StepData;
using cluster_testing::Tables;

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
