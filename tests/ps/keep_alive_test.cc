// Keep-alives on the in-process transport: they restart a waiting Recv's
// timeout when the rank it waits for sends them, are never returned as messages (not even to a
// kAnyTag wait), and a rank that stops sending them times out as before. A
// server writing a slow checkpoint keeps its worker waiting. The MPI
// transport runs the first checks under mpirun
// (tests/integration/mpi_keep_alive_check.cc); a slow reader restore is in
// tests/worker/train/checkpoint_test.cc.
#include "ps/keep_alive.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "ps/remote_client.h"
#include "ps/server.h"
#include "storage/embedding_store.h"
#include "tests/storage/temp_dir.h"

namespace ctrps::ps {
namespace {

using Clock = std::chrono::steady_clock;
// Generous for a loaded 2-core machine: a keep-alive thread descheduled for a
// whole timeout would fail a test that is not about scheduling.
constexpr int64_t kTimeoutMs = 600;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Rank 1 stays quiet for `quiet_ms` (keeping alive if `keep_alive`), then
// sends one message; rank 0 waits for it with kTimeoutMs.
StatusOr<Message> WaitThroughQuiet(int64_t quiet_ms, bool keep_alive, int tag_waited) {
  auto net = NewInProcessNetwork(2);
  std::thread sender([&] {
    {
      std::unique_ptr<KeepAlive> alive;
      if (keep_alive) alive = std::make_unique<KeepAlive>(net->Endpoint(1), kTimeoutMs / 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(quiet_ms));
    }
    EXPECT_TRUE(net->Endpoint(1)->Send(0, Channel::kWorker, kTagCollective, {'o', 'k'}).ok());
  });
  auto m = net->Endpoint(0)->Recv(Channel::kWorker, 1, tag_waited, kTimeoutMs);
  sender.join();
  return m;
}

TEST(KeepAliveTest, KeepAlivesCarryAWaitThroughALongQuietSpell) {
  for (int tag : {kTagCollective, kAnyTag}) {
    auto m = WaitThroughQuiet(4 * kTimeoutMs, true, tag);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->tag, kTagCollective);  // never a keep-alive, even for kAnyTag
    EXPECT_EQ(std::string(m->payload.begin(), m->payload.end()), "ok");
  }
}

TEST(KeepAliveTest, WithoutThemTheWaitTimesOut) {
  auto m = WaitThroughQuiet(4 * kTimeoutMs, false, kTagCollective);
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
}

TEST(KeepAliveTest, ARankSilentAfterItsScopeStillTimesOut) {
  // A longer timeout and keep-alives at a tenth of it: on a loaded machine
  // a 300 ms timeout was once outlasted by a descheduled keep-alive thread.
  constexpr int64_t kLongTimeoutMs = 1000;
  auto net = NewInProcessNetwork(3);
  const auto start = Clock::now();
  std::thread busy([&] {
    KeepAlive alive(net->Endpoint(2), kLongTimeoutMs / 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * kLongTimeoutMs));
  });  // then silent
  // Rank 0 waits for rank 2, which never sends a message: its keep-alives
  // hold the wait only while they last.
  auto m = net->Endpoint(0)->Recv(Channel::kServer, 2, kTagRequest, kLongTimeoutMs);
  const double waited = SecondsSince(start);
  busy.join();
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_GE(waited, 2 * kLongTimeoutMs / 1000.0) << "timed out while keep-alives were arriving";
}

// Only the keep-alives of the rank waited for count: rank 2 busy does not
// hold a wait for rank 1, which went silent (before, any rank's did, so a
// busy rank hid a silent one; and waiting ranks could not send their own).
TEST(KeepAliveTest, OnlyTheAwaitedRanksKeepAlivesCount) {
  auto net = NewInProcessNetwork(3);
  std::thread busy([&] {
    KeepAlive alive(net->Endpoint(2), kTimeoutMs / 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * kTimeoutMs));
  });
  const auto start = Clock::now();
  auto m = net->Endpoint(0)->Recv(Channel::kServer, 1, kTagRequest, kTimeoutMs);
  const double waited = SecondsSince(start);
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_LT(waited, 2 * kTimeoutMs / 1000.0);
  // With kAnySource, those of the ranks in `awaited`, or of any rank.
  const std::vector<int> awaited = {1};
  m = net->Endpoint(0)->Recv(Channel::kServer, kAnySource, kTagRequest, kTimeoutMs, &awaited);
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  const auto again = Clock::now();
  m = net->Endpoint(0)->Recv(Channel::kServer, kAnySource, kTagRequest, kTimeoutMs / 2);
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_GE(SecondsSince(again), 0.5 * kTimeoutMs / 1000.0);
  busy.join();
}

// Ranks that all wait for each other (a stuck job, not a silent rank) keep
// each other alive only for kWaitingKeepAliveTimeouts timeouts, and say so.
TEST(KeepAliveTest, RanksWaitingForEachOtherEndAsStuck) {
  auto net = NewInProcessNetwork(2);
  std::vector<Status> got(2);
  std::vector<double> waited(2);
  std::vector<std::thread> ranks;
  for (int r : {0, 1})
    ranks.emplace_back([&, r] {
      const auto start = Clock::now();
      got[r] = net->Endpoint(r)->Recv(Channel::kWorker, 1 - r, kTagCollective, kTimeoutMs).status();
      waited[r] = SecondsSince(start);
    });
  for (auto& t : ranks) t.join();
  for (int r : {0, 1}) {
    EXPECT_EQ(got[r].code(), Status::Code::kUnavailable);
    EXPECT_EQ(got[r].message().rfind(kStuckWaitMessage, 0), 0u) << got[r].ToString();
    EXPECT_GE(waited[r], 2.0 * kTimeoutMs / 1000.0);
    EXPECT_LT(waited[r], (kWaitingKeepAliveTimeouts + 1.0) * kTimeoutMs / 1000.0);
  }
}

// To both inboxes of every rank, the sender's own too (in colocated mode a
// rank's server thread waits for its own worker): a wait on each inbox
// outlives its timeout only through the keep-alive that reached it, and
// then gets the message, never the keep-alive.
TEST(KeepAliveTest, SendsToBothInboxesOfEveryRank) {
  auto net = NewInProcessNetwork(3);
  std::vector<std::thread> waiters;
  std::vector<Status> got(6);
  for (int r : {0, 1, 2})
    for (Channel c : {Channel::kServer, Channel::kWorker})
      waiters.emplace_back([&, r, c] {
        auto m = net->Endpoint(r)->Recv(c, kAnySource, kAnyTag, kTimeoutMs);
        got[2 * r + static_cast<int>(c)] =
            !m.ok() ? m.status() : m->tag == kTagRequest ? Status::OK() : Status::Internal("a keep-alive");
      });
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kTimeoutMs / 3));
  ASSERT_TRUE(SendKeepAlives(net->Endpoint(1)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kTimeoutMs / 3));  // past the first timeout
  for (int r : {0, 1, 2})
    for (Channel c : {Channel::kServer, Channel::kWorker})
      ASSERT_TRUE(net->Endpoint(1)->Send(r, c, kTagRequest, {'x'}).ok());
  for (auto& w : waiters) w.join();
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(got[i].ok()) << "rank " << i / 2 << " inbox " << i % 2 << ": " << got[i].ToString();
}

// A memory store whose Flush takes `flush_ms` (a large store's write).
class SlowFlushStore final : public storage::EmbeddingStore {
 public:
  explicit SlowFlushStore(int64_t flush_ms) : flush_ms_(flush_ms) {}
  Status CreateTable(const storage::TableSpec& spec) override { return s_->CreateTable(spec); }
  std::vector<storage::TableSpec> Tables() const override { return s_->Tables(); }
  Status Lookup(int table, const Key* keys, size_t n, float* out, int out_floats, bool create) override {
    return s_->Lookup(table, keys, n, out, out_floats, create);
  }
  Status Modify(int table, const Key* keys, size_t n, uint32_t step, const RowFn& fn) override {
    return s_->Modify(table, keys, n, step, fn);
  }
  Status Scan(int table, const ScanFn& fn) const override { return s_->Scan(table, fn); }
  Status Put(int table, const Key* keys, size_t n, const float* rows, const storage::RowStats* st) override {
    return s_->Put(table, keys, n, rows, st);
  }
  Status DropTable(int table) override { return s_->DropTable(table); }
  Status Flush() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(flush_ms_));
    return s_->Flush();
  }
  StatusOr<storage::TableStats> Stats(int table) const override { return s_->Stats(table); }

 private:
  int64_t flush_ms_;
  std::unique_ptr<storage::EmbeddingStore> s_ = storage::NewMemoryStore();
};

// The worker asks for a checkpoint and waits with a 300 ms timeout; the
// server's write takes 1.2 s per shard, and its keep-alives carry the wait.
TEST(KeepAliveTest, ServerWritingASlowCheckpointKeepsItsWorkerWaiting) {
  auto layout = ClusterLayout::Make(2, 1, false, 2);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  auto net = NewInProcessNetwork(2);
  Status server_status;
  std::thread server([&] {
    ServerOptions o;
    o.layout = *layout;
    o.peer_timeout_ms = kTimeoutMs;  // one timeout for the job: it sets the keep-alive interval
    o.new_store = [](uint32_t) -> StatusOr<std::unique_ptr<storage::EmbeddingStore>> {
      return std::unique_ptr<storage::EmbeddingStore>(std::make_unique<SlowFlushStore>(4 * kTimeoutMs));
    };
    auto s = NewParameterServer(o, net->Endpoint(0));
    server_status = s.ok() ? (*s)->Run() : s.status();
  });
  RemoteClientOptions o;
  o.layout = *layout;
  o.peer_timeout_ms = kTimeoutMs;
  auto client = NewRemoteClient(o, net->Endpoint(1));
  TableConfig tc;
  tc.table_id = 0;
  tc.dim = 4;
  ASSERT_TRUE(client->DeclareTables({tc}).ok());
  std::vector<Key> keys = {MakeKey(0, 1), MakeKey(0, 2), MakeKey(0, 3), MakeKey(0, 4)};
  std::vector<float> rows(keys.size() * 4);
  ASSERT_TRUE(client->Pull({{0, keys.data(), keys.size(), rows.data()}}, true).ok());
  const auto start = Clock::now();
  auto files = client->SaveShards(storage::testing::FreshDir("keep-alive-ckpt"), 1, 0);
  const double waited = SecondsSince(start);
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  if (files.ok()) {
    EXPECT_EQ(files->size(), 2u);  // both virtual shards
  }
  EXPECT_GE(waited, 4 * kTimeoutMs / 1000.0);     // the write did outlast the timeout
  EXPECT_TRUE(client->Shutdown().ok());
  server.join();
  EXPECT_TRUE(server_status.ok()) << server_status.ToString();
}

}  // namespace
}  // namespace ctrps::ps
