// Turns a parsed Batch into a SparseBatch: per field, the batch's unique
// keys and each example's index into them, so rows are pulled, and their
// gradients pushed, once per unique key per step.
#pragma once

#include <vector>

#include "common/flat_key_map.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

class SparseBatchBuilder {
 public:
  // row_widths[f]: floats per row of field f (Model::RowWidth).
  explicit SparseBatchBuilder(std::vector<int> row_widths);

  // Fills `out` (reusing its buffers): unique keys, indices, values, and
  // rows/grads sized W x U (rows left for the caller to pull into).
  void Build(const Batch& batch, SparseBatch* out);

  int num_fields() const { return static_cast<int>(row_widths_.size()); }

  // With V > 1, each field's unique keys come ordered by virtual shard
  // (VirtualShardOf(key, V); first-seen order within a shard), so a
  // parameter server reads and writes them shard by shard, straight from
  // and into the message, without regrouping. Row values do not depend on
  // the order. Default 1: first-seen order.
  void SetShardOrder(uint32_t num_virtual_shards) { num_virtual_shards_ = num_virtual_shards; }

 private:
  // Reorders fr's unique keys by shard (stable) and remaps its indices.
  void OrderByShard(FieldRows* fr);

  std::vector<int> row_widths_;
  FlatKeyMap map_;
  uint32_t num_virtual_shards_ = 1;
  std::vector<uint32_t> shard_, start_, new_index_;
  std::vector<Key> sorted_;
};

}  // namespace ctrps::worker
