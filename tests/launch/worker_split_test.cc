// The per-worker time split: gathered over a real (in-process) worker group,
// the slowest worker chosen by its own work, and how it is reported.
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "launch/worker_split.h"
#include "ps/transport.h"

namespace ctrps::launch {
namespace {

WorkerSplit Split(int worker, int rank, double read_s, double compute_s, double push_s) {
  WorkerSplit s;
  s.worker = worker;
  s.rank = rank;
  s.steps = 100;
  s.seconds = 10;
  s.read_s = read_s;
  s.compute_s = compute_s;
  s.push_s = push_s;
  return s;
}

TEST(WorkerSplit, TheSlowestHasTheMostOwnWorkNotTheMostWaiting) {
  // Worker 1 waits longest in push (for the others); worker 2 reads and
  // computes longest: it sets the pace.
  const std::vector<WorkerSplit> s = {Split(0, 1, 0.5, 2.0, 1.0), Split(1, 2, 0.5, 1.5, 3.0),
                                      Split(2, 3, 1.0, 3.0, 0.1)};
  EXPECT_EQ(SlowestWorker(s), 2);
  EXPECT_EQ(SlowestWorker({}), -1);
  const std::string text = FormatWorkerSplits(s);
  EXPECT_NE(text.find("worker 2 (rank 3)  10.00 / 0.00 / 30.00 / 0.00 / 1.00 / 0.00  <- slowest: "
                      "rank 3, own work (read + compute) 40.00 ms/step, 2.00x the least loaded"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("slowest"), text.rfind("slowest")) << "only one is named: " << text;
}

TEST(WorkerSplit, GatheredOnWorkerZeroInWorkerOrder) {
  constexpr int kWorkers = 3;
  auto net = ps::NewInProcessNetwork(kWorkers);
  std::vector<StatusOr<std::vector<WorkerSplit>>> got(kWorkers, std::vector<WorkerSplit>{});
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w)
    threads.emplace_back([&, w] {
      ps::WorkerGroup group(net->Endpoint(w), {0, 1, 2}, 10000);
      got[w] = GatherWorkerSplits(&group, Split(w, 10 + w, 0.1 * (w + 1), 1, 0));
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(got[0].ok()) << got[0].status().ToString();
  ASSERT_EQ(got[0]->size(), 3u);
  for (int w = 0; w < kWorkers; ++w) {
    EXPECT_EQ((*got[0])[w].worker, w);
    EXPECT_EQ((*got[0])[w].rank, 10 + w);
    EXPECT_DOUBLE_EQ((*got[0])[w].read_s, 0.1 * (w + 1));
  }
  for (int w = 1; w < kWorkers; ++w) {
    ASSERT_TRUE(got[w].ok());
    EXPECT_TRUE(got[w]->empty());
  }
}

TEST(WorkerSplit, MetricsLinesMarkOneSlowest) {
  const std::string path = testing::TempDir() + "/worker_split_metrics.jsonl";
  {
    MetricsWriter m;
    ASSERT_TRUE(m.Open(path, true).ok());
    WriteWorkerSplitMetrics({Split(0, 1, 0.5, 2.0, 1.0), Split(1, 2, 1.0, 3.0, 0.1)}, &m);
  }
  std::ifstream in(path);
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_NE(a.find("\"event\":\"worker_split\",\"worker\":0,\"rank\":1,\"steps\":100"), std::string::npos) << a;
  EXPECT_NE(a.find("\"slowest\":false"), std::string::npos) << a;
  EXPECT_NE(b.find("\"compute_s\":3,"), std::string::npos) << b;
  EXPECT_NE(b.find("\"slowest\":true"), std::string::npos) << b;
}

}  // namespace
}  // namespace ctrps::launch
