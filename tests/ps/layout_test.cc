// Cluster layouts (ps/layout.h): keys map to their virtual shard's server,
// impossible layouts are refused, and a rank is described by its role (and
// its host once the job spans several).
#include "ps/layout.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace ctrps::ps {
namespace {

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

}  // namespace
}  // namespace ctrps::ps
