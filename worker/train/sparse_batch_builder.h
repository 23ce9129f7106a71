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

 private:
  std::vector<int> row_widths_;
  FlatKeyMap map_;
};

}  // namespace ctrps::worker
