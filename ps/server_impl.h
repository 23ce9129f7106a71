// The parameter server behind NewParameterServer (ps/server.h), shared by
// its two source files: server.cc (the request loop, pull, push and the BSP
// merge) and server_shards.cc (what touches every owned shard at once:
// scan, bulk load, checkpoint save and load, table counters). Internal:
// everything else includes ps/server.h.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "ps/client.h"
#include "ps/server.h"
#include "ps/wire.h"

namespace ctrps::ps::internal {

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
  Status Handle(int source, const DecodedMessage& d);
  Status Declare(int source, const DecodedMessage& d);
  Status Pull(int source, const DecodedMessage& d);
  // Applies one slice of gradients (unique keys) with its table's optimizer.
  Status ApplySlice(const WireSlice& s, uint32_t step);
  Status HoldBspPush(int w, Message m);
  // Sums every key's gradients over the workers in worker order, then
  // applies each table once.
  Status ApplyBspStep();

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
};

}  // namespace ctrps::ps::internal
