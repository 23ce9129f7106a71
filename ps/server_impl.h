// The parameter server behind NewParameterServer (ps/server.h), shared by
// its two source files: server.cc (the request loop, pull, push and the BSP
// merge) and server_shards.cc (what touches every owned shard at once:
// scan, bulk load, checkpoint save and load, table counters). Internal:
// everything else includes ps/server.h.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/task_pool.h"
#include "ps/client.h"
#include "ps/server.h"
#include "ps/wire.h"

namespace ctrps::ps::internal {

// One job at a time on a persistent second thread: Start hands it over,
// Wait blocks until it has returned and gives its Status.
class BackgroundJob {
 public:
  BackgroundJob() = default;
  ~BackgroundJob();
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;
  void Start(std::function<Status()> job);
  Status Wait();  // OK when nothing was started

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<Status()> job_;
  bool running_ = false, stop_ = false;
  Status result_;
  std::thread thread_;
};

class Server final : public ParameterServer {
 public:
  Server(ServerOptions o, Transport* t) : opt_(std::move(o)), t_(t) {
    me_ = opt_.layout.ServerIndex(t_->rank());
    pending_.resize(opt_.layout.num_workers());
    done_.assign(opt_.layout.num_workers(), false);
  }

  // Opens the stores of the virtual shards this rank owns.
  Status Init();
  Status Run() override;

 private:
  struct Table {
    TableConfig config;
    std::unique_ptr<SparseOptimizer> optimizer;
    storage::TableSpec spec;
  };
  // Keys of one slice grouped by owned shard: position p of the grouping
  // is position at(p) of the slice; begin[s]..begin[s+1] is shard s's part.
  // Workers send keys already shard by shard (the trainer orders them so):
  // then the grouping is the slice itself (sorted), with nothing copied.
  struct Grouping {
    std::vector<uint32_t> order, begin;
    std::vector<Key> keys;          // keys in `order` (unless sorted)
    bool sorted = false;            // the slice was already grouped: order is the identity
    const Key* key_ptr = nullptr;   // the keys in grouped order
    uint32_t at(uint32_t p) const { return sorted ? p : order[p]; }
  };

  // server.cc: requests, pull and push.
  Status TimeoutError(const Status& recv) const;
  Status ReplyError(int dest, int tag, uint32_t step, const Status& s);
  StatusOr<Table*> GetTable(const WireSlice& s);
  // With one local store: every key's shard must be it.
  Status CheckOwned(const WireSlice& s);
  Status NotOurs(const WireSlice& s, Key key) const;
  Status Group(const WireSlice& s, Grouping* g);
  // fn(k, lo, hi) for every owned shard k with keys in the grouping
  // (positions lo..hi), on up to opt_.threads threads (pool_) when the slice
  // is large enough to pay for them; the first error in shard order.
  template <typename Fn>
  Status ForEachShard(const Grouping& g, size_t n, Fn&& fn);
  Status Handle(int source, const DecodedMessage& d);
  Status Declare(int source, const DecodedMessage& d);
  Status Pull(int source, const DecodedMessage& d);
  // What makes a push slice applicable (declared table of that width, keys
  // and gradients, every key owned here), checked before it is acknowledged.
  Status CheckPushSlice(const WireSlice& s);
  // ASP/SSP: acknowledges a valid push on arrival, then applies it before
  // this server reads its next request (so every later request sees it):
  // the worker's next push travels while this one is applied. An invalid
  // push is refused whole (nothing applied); a store failing to apply an
  // acknowledged push fails the server.
  Status AckThenApplyPush(Message m, const DecodedMessage& d);
  // The server's own error when a store fails on an acknowledged push.
  Status AppliedPushFailed(const Status& s, uint32_t step) const;
  // Applies one slice of gradients (unique keys) with its table's optimizer.
  Status ApplySlice(const WireSlice& s, uint32_t step);
  Status HoldBspPush(int w, Message m);
  // Every held push of the step is valid (CheckPushSlice).
  Status CheckBspStep();
  // Sums every key's gradients over the workers' pushes (in worker order),
  // then applies each table once.
  Status ApplyBspStep(std::vector<Message>& pushes, uint32_t step);
  // Applies acknowledged pushes (applying_, `keys` keys in all) with fn: on
  // the background thread when they are large, so that Run receives the
  // next request meanwhile; inline when small.
  void StartApply(size_t keys, std::function<Status()> fn);
  // Waits for the apply (Run calls it before it handles anything else), a
  // failure becoming failed_, and recycles the pushes' buffers.
  void FinishApply();

  // server_shards.cc: every owned shard at once.
  Status Scan(int source, const DecodedMessage& d);
  Status Load(int source, const DecodedMessage& d);
  // Writes each owned shard's rows to dir/shard-NNNN.rows (a checkpoint).
  Status SaveShards(int source, const DecodedMessage& d);
  // Replies with each table's counters summed over the owned shards' stores.
  Status Stats(int source);
  // Rewrites a table's rows on every owned shard (ps/table_rewrite.h).
  Status Rewrite(int source, const DecodedMessage& d);
  // Magnitude histograms and pruning of embedding entries (ps/entry_select.h).
  Status EntryHistogram(int source, const DecodedMessage& d);
  Status PruneEntries(int source, const DecodedMessage& d);
  Status DropTables(int source, const DecodedMessage& d);
  // Loads each owned shard's file from every listed directory, in order.
  Status LoadShards(int source, const DecodedMessage& d);

  ServerOptions opt_;
  Transport* t_;
  int me_ = -1;
  std::vector<std::unique_ptr<storage::EmbeddingStore>> stores_;  // owned shards: v = me_ + k * S
  std::map<int, Table> tables_;
  std::vector<std::optional<Message>> pending_;  // BSP: this step's push per worker
  uint32_t pending_step_ = 0;
  std::vector<bool> done_;
  // Scratch, reused across requests.
  Grouping group_;
  std::vector<uint32_t> shard_of_, cursor_;
  std::vector<int32_t> local_shard_;  // virtual shard -> index in stores_, or -1 (not ours)
  std::vector<float> rows_, merged_grads_;
  std::vector<Key> merged_keys_;
  std::unique_ptr<TaskPool> pool_;  // helpers for ForEachShard; null with one thread
  Status failed_;  // set when an acknowledged push could not be applied: Run returns it
  std::vector<Message> applying_;  // acknowledged pushes being applied
  BackgroundJob apply_;
};

}  // namespace ctrps::ps::internal
