#include "worker/train/sparse_batch_builder.h"

#include "common/check.h"
#include "common/keys.h"

namespace ctrps::worker {

SparseBatchBuilder::SparseBatchBuilder(std::vector<int> row_widths)
    : row_widths_(std::move(row_widths)), map_(8192) {}

void SparseBatchBuilder::Build(const Batch& batch, SparseBatch* out) {
  const int F = num_fields();
  const int B = batch.size();
  CHECK_EQ(batch.num_fields, F) << "batch has a different field count than the model";
  CHECK_EQ(batch.keys.size(), static_cast<size_t>(B) * F);
  out->batch_size = B;
  out->fields.resize(F);
  out->values.resize(F, B);
  for (int b = 0; b < B; ++b)
    for (int f = 0; f < F; ++f) out->values(f, b) = batch.values[static_cast<size_t>(b) * F + f];
  for (int f = 0; f < F; ++f) {
    FieldRows& fr = out->fields[f];
    fr.unique_keys.clear();
    fr.index.resize(B);
    map_.Clear();
    for (int b = 0; b < B; ++b) {
      Key k = batch.keys[static_cast<size_t>(b) * F + f];
      bool inserted;
      uint32_t idx = map_.FindOrInsert(k, &inserted);
      if (inserted) fr.unique_keys.push_back(k);
      fr.index[b] = static_cast<int32_t>(idx);
    }
    if (num_virtual_shards_ > 1) OrderByShard(&fr);
    const int U = static_cast<int>(fr.unique_keys.size());
    fr.rows.resize(row_widths_[f], U);
    fr.grads.resize(row_widths_[f], U);
  }
}

void SparseBatchBuilder::OrderByShard(FieldRows* fr) {
  const size_t U = fr->unique_keys.size();
  const uint32_t V = num_virtual_shards_;
  shard_.resize(U);
  start_.assign(V + 1, 0);
  bool sorted = true;
  for (size_t u = 0; u < U; ++u) {
    shard_[u] = VirtualShardOf(fr->unique_keys[u], V);
    ++start_[shard_[u] + 1];
    sorted &= u == 0 || shard_[u] >= shard_[u - 1];
  }
  if (sorted) return;
  for (uint32_t v = 0; v < V; ++v) start_[v + 1] += start_[v];
  new_index_.resize(U);
  sorted_.resize(U);
  for (size_t u = 0; u < U; ++u) {
    const uint32_t pos = start_[shard_[u]]++;
    new_index_[u] = pos;
    sorted_[pos] = fr->unique_keys[u];
  }
  fr->unique_keys.swap(sorted_);
  for (int32_t& i : fr->index) i = static_cast<int32_t>(new_index_[i]);
}

}  // namespace ctrps::worker
