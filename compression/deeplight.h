// DeepLight: gradual magnitude pruning (COMPRESSION.md section 3).
//
// After warm-up, every `every_steps` steps and at each epoch's end, the
// target sparsity is S_t = S (1 - 0.99^(t/100)), t = steps since warm-up,
// and the smallest entries by magnitude are zeroed:
//  - each MLP weight matrix (biases and the output layer kept) at S_t;
//  - the field-pair matrix R at S_t * pair_ratio, on |(R + R^T)/2| over the
//    pairs i < j, a pair zeroed in both halves;
//  - the second-order embedding entries of every field, with ONE global
//    threshold at S_t * embedding_ratio, found by an exact distributed
//    selection: magnitude histograms where the rows live, summed, refined
//    to the k-th smallest value (ps/entry_select.h).
// Thresholds are exact quantiles: with n values and k = floor(S n), every
// entry whose magnitude is at most the k-th smallest is zeroed (ties
// included, so a few more than k when magnitudes tie exactly; zeros
// already there count among the smallest).
// Regrowth (the paper's behaviour): pruned weights train on and are pruned
// again; or persistent masks: pruned weights stay 0 (dense masks
// re-applied after every step; embedding entries get zero gradients and
// their optimizer state is reset).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/metrics_writer.h"
#include "common/status.h"
#include "ps/client.h"
#include "ps/entry_select.h"
#include "ps/worker_group.h"
#include "worker/nn/model.h"
#include "worker/train/trainer_hook.h"

namespace ctrps::compression {

struct DeepLightOptions {
  double mlp_sparsity = 0.9;       // S, [0, 1): the MLP weight matrices' final sparsity
  double pair_ratio = 1.0;         // R's target is S_t * pair_ratio, [0, 1/S]
  double embedding_ratio = 0.444;  // embeddings' target is S_t * embedding_ratio
  int64_t every_steps = 10;        // pruning period
  double damping_steps = 100;      // S_t = S (1 - 0.99^(t / damping_steps))
  bool persistent_masks = false;   // else regrowth between pruning steps
  int64_t start_step = 0;          // warm-up ends here: t = step - start_step
};

// Refuses settings the model cannot take, naming them (`where` prefixes).
[[nodiscard]] Status ValidateDeepLight(const DeepLightOptions& o, const worker::ModelOptions& m,
                                       const std::string& where);

// S_t = S (1 - 0.99^(t / 100)).
double ScheduledSparsity(double final_sparsity, int64_t t, double damping_steps = 100);

// k = floor(fraction * n) clamped to [0, n].
uint64_t CountToPrune(double fraction, uint64_t n);

// The magnitude bits of the k-th smallest (1-based) of `bits` (k >= 1).
uint32_t KthSmallest(std::vector<uint32_t> bits, uint64_t k);

// Zeroes the floor(fraction * n) smallest-magnitude entries of w[0, n)
// (ties at the threshold included). Returns the entries now zero.
uint64_t PruneSmallest(float* w, size_t n, double fraction);

// R (F x F, column-major): zeroes the floor(fraction * F(F-1)/2) pairs
// i < j with the smallest |(R_ij + R_ji)/2|, both halves (ties included).
// Returns the pairs now zero.
uint64_t PrunePairs(float* r, int num_fields, double fraction);

// The one global embedding threshold: the magnitude bits of the k-th
// smallest entry of `set` over every shard (two histogram rounds), with
// *total the entries counted and *at_or_below those the threshold takes
// (>= k: ties). k = 0: returns false (nothing to prune).
StatusOr<bool> GlobalThreshold(ps::EmbeddingClient* client, const ps::EntrySet& set, double fraction,
                               uint32_t* bits, uint64_t* total, uint64_t* at_or_below = nullptr);

// Non-zeros of the pruned parts (the report, and the tests).
struct SparsityReport {
  int64_t step = 0;
  double target = 0;        // S_t
  uint64_t mlp_weights = 0, mlp_nonzero = 0;
  uint64_t pairs = 0, pairs_nonzero = 0;
  uint64_t embedding_entries = 0;
  uint64_t embedding_zero = 0;    // entries at 0 after the prune
  uint64_t embedding_zeroed = 0;  // of which this prune zeroed (were not 0)
};

class DeepLightPruner : public worker::TrainerHook {
 public:
  // group: the workers (null: one); chief: the worker that talks to the
  // servers for the embeddings (the others wait at barriers). metrics may
  // be null. scratch_dir: for the servers' row updates.
  DeepLightPruner(DeepLightOptions options, worker::Model* model, ps::EmbeddingClient* client,
                  ps::WorkerGroup* group, bool chief, std::string scratch_dir,
                  MetricsWriter* metrics);

  void BeforePush(worker::SparseBatch* batch) override;
  Status AfterStep(int64_t step) override;
  Status AfterEpoch(int64_t step) override;
  // Prunes now at the current target (the last pruning step of a run).
  Status PruneAt(int64_t step);
  const SparsityReport& last() const { return last_; }

 private:
  void ApplyDenseMasks();
  void RebuildDenseMasks();
  std::vector<std::pair<size_t, size_t>> MlpWeights() const;  // (offset, size)

  DeepLightOptions o_;
  worker::Model* model_;
  ps::EmbeddingClient* client_;
  ps::WorkerGroup* group_;
  bool chief_;
  std::string scratch_;
  MetricsWriter* metrics_;
  ps::EntrySet embeddings_;      // the tables' ids
  std::vector<int> fields_;       // their model fields
  int r_offset_ = -1;  // R's offset in the dense buffer, -1 without R
  std::vector<uint8_t> dense_mask_;  // persistent masks: 1 = pruned
  int64_t last_pruned_step_ = -1;
  SparsityReport last_;
};

}  // namespace ctrps::compression
