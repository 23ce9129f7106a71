// WorkerGroup collectives on an in-process network: the chunked chain
// allreduce sums in worker order, bit for bit as one worker summing every
// vector in turn would, for any worker count, length and chunk size, and
// keeps its messages apart from the collectives around it.
#include "ps/worker_group.h"

#include <cmath>
#include <cstring>
#include <random>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ps/transport.h"

namespace ctrps::ps {
namespace {

// What the allreduce must produce: ((d0 + d1) + d2) + ..., then times 1/W.
std::vector<float> SequentialMean(const std::vector<std::vector<float>>& d) {
  std::vector<float> sum = d[0];
  if (d.size() == 1) return sum;
  for (size_t w = 1; w < d.size(); ++w)
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += d[w][k];
  const float scale = 1.0f / static_cast<float>(d.size());
  for (float& v : sum) v *= scale;
  return sum;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(WorkerGroupTest, ChainAllreduceMatchesSequentialSumBitForBit) {
  std::mt19937 rng(5);
  // Wide dynamic range, so any other summation order would show.
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-20, 20);
  for (int W : {1, 2, 3, 4, 5}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{4099}}) {
      for (size_t chunk : {size_t{1}, size_t{1000}, size_t{64} << 10}) {
        if (chunk == 1 && n > 7) continue;  // one message per float: keep it short
        std::vector<std::vector<float>> in(W, std::vector<float>(n));
        for (auto& v : in)
          for (float& x : v) x = std::ldexp(mant(rng), expo(rng));
        const std::vector<float> want = SequentialMean(in);
        auto net = NewInProcessNetwork(W);
        std::vector<int> ranks(W);
        for (int w = 0; w < W; ++w) ranks[w] = w;
        std::vector<std::vector<float>> out = in;
        std::vector<Status> st(W);
        std::vector<std::thread> threads;
        for (int w = 0; w < W; ++w)
          threads.emplace_back([&, w] {
            WorkerGroup g(net->Endpoint(w), ranks, 5000);
            g.set_chunk_floats(chunk);
            st[w] = g.AllreduceMean(out[w].data(), n, "test");
          });
        for (auto& t : threads) t.join();
        for (int w = 0; w < W; ++w) {
          ASSERT_TRUE(st[w].ok()) << st[w].ToString();
          EXPECT_TRUE(SameBits(out[w], want)) << "W " << W << " n " << n << " chunk " << chunk
                                              << " worker " << w;
        }
      }
    }
  }
}

// Rounds of allreduce, AllTrue and Broadcast back to back: each collective
// gets its own messages although the same pairs of workers exchange them.
TEST(WorkerGroupTest, CollectivesInSequenceDoNotMix) {
  const int W = 4;
  auto net = NewInProcessNetwork(W);
  std::vector<int> failures(W, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < W; ++w)
    threads.emplace_back([&, w] {
      WorkerGroup g(net->Endpoint(w), {0, 1, 2, 3}, 5000);
      g.set_chunk_floats(3);
      for (int round = 0; round < 20; ++round) {
        std::vector<float> v(10 + round);
        for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(w * 100 + round + k);
        if (!g.AllreduceMean(v.data(), v.size(), "round").ok()) ++failures[w];
        for (size_t k = 0; k < v.size(); ++k)
          if (v[k] != static_cast<float>(150 + round + k)) ++failures[w];
        auto all = g.AllTrue(round % 3 != 0 || w != 1, "flag");
        if (!all.ok() || *all != (round % 3 != 0)) ++failures[w];
        std::vector<char> b;
        if (w == 0) b.assign(static_cast<size_t>(round + 1), static_cast<char>(round));
        if (!g.Broadcast(&b, "bytes").ok() || b.size() != static_cast<size_t>(round + 1) ||
            b[0] != static_cast<char>(round))
          ++failures[w];
      }
    });
  for (auto& t : threads) t.join();
  for (int w = 0; w < W; ++w) EXPECT_EQ(failures[w], 0) << "worker " << w;
}

TEST(WorkerGroupTest, SilentWorkerIsNamed) {
  const int W = 3;
  auto net = NewInProcessNetwork(W);
  net->Silence(1);
  std::vector<Status> st(W);
  std::vector<std::thread> threads;
  for (int w : {0, 2})
    threads.emplace_back([&, w] {
      WorkerGroup g(net->Endpoint(w), {0, 1, 2}, 300);
      std::vector<float> v(10, 1.0f);
      st[w] = g.AllreduceMean(v.data(), v.size(), "dense gradient allreduce at step 3");
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(st[2].code(), Status::Code::kUnavailable);
  EXPECT_NE(st[2].message().find("(worker 1) in dense gradient allreduce at step 3"),
            std::string::npos) << st[2].ToString();
  EXPECT_EQ(st[0].code(), Status::Code::kUnavailable) << st[0].ToString();
}

// Blame: only the rank that went silent is named first. Worker 2 is
// silent. Worker 1 sends its part of a gather, then waits for worker 0's
// broadcast; worker 0 (a little later) gathers, and waits for worker 2.
// Before, worker 1 timed out first and named worker 0, which was only
// waiting; now a wait is not silence (Recv sends keep-alives), so the first
// error is worker 0's, naming worker 2 alone.
TEST(WorkerGroupTest, OnlyTheSilentWorkerIsBlamed) {
  const int W = 3;
  const int64_t timeout_ms = 600;
  auto net = NewInProcessNetwork(W);
  net->Silence(2);
  std::vector<Status> st(W);
  std::vector<std::chrono::steady_clock::time_point> ended(W);
  std::vector<std::thread> threads;
  for (int w : {0, 1})
    threads.emplace_back([&, w] {
      WorkerGroup g(net->Endpoint(w), {0, 1, 2}, timeout_ms);
      if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms / 6));
      auto gathered = g.Gather({'x'}, "the worker files of checkpoint 7");
      st[w] = gathered.status();
      if (st[w].ok()) {
        std::vector<char> b = {'y'};
        st[w] = g.Broadcast(&b, "the commit of checkpoint 7");
      }
      ended[w] = std::chrono::steady_clock::now();
    });
  for (auto& t : threads) t.join();
  ASSERT_FALSE(st[0].ok());
  ASSERT_FALSE(st[1].ok());
  EXPECT_LT(ended[0], ended[1]) << "worker 1 blamed first: " << st[1].ToString();
  EXPECT_NE(st[0].message().find("for rank 2 (worker 2)"), std::string::npos) << st[0].ToString();
  EXPECT_NE(st[0].message().find("gone or silent"), std::string::npos) << st[0].ToString();
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

}  // namespace
}  // namespace ctrps::ps
