// A parameter-server cluster under bad requests and failures: a malformed
// request gets an error and the server keeps serving; pushes are acknowledged
// then applied before the next request, a push with one bad slice is refused
// whole, a store failing on an acknowledged push fails the server naming it;
// a silent server is a timeout naming its rank.
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/server.h"
#include "ps/transport.h"
#include "ps/wire.h"
#include "storage/embedding_store.h"
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

}  // namespace
}  // namespace ctrps::ps
