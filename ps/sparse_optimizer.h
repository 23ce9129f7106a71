// Row-wise sparse optimizers for embedding rows, applied where the row lives
// (on the server). Each updates the embedding and its optimizer slots
// together, in place, in one call: a row and its state are never out of step.
//
// Slot layouts (persisted in stores and checkpoints: never reorder):
//   sgd:     none
//   adagrad: acc[dim]
//   adam:    m[dim], v[dim], t (the row's own update count, for bias correction)
//   ftrl:    z[dim], n[dim]  (the embedding holds the current FTRL weights)
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "storage/row_init.h"

namespace ctrps::ps {

enum class SparseOptimizerType { kSGD, kAdagrad, kAdam, kFTRL };

struct SparseOptimizerOptions {
  SparseOptimizerType type = SparseOptimizerType::kAdam;
  float learning_rate = 0.001f;      // sgd/adagrad/adam step size
  float l2 = 0.0f;                   // L2 weight decay added to the gradient (sgd/adagrad/adam)
  float adagrad_initial_acc = 0.0f;  // adagrad: initial accumulator
  float adagrad_eps = 1e-8f;
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.999f;
  float adam_eps = 1e-8f;
  float ftrl_alpha = 0.05f;          // ftrl: per-coordinate learning rate alpha
  float ftrl_beta = 1.0f;
  float ftrl_l1 = 0.0f;
  float ftrl_l2 = 0.0f;

  Status Validate() const;
};

const char* SparseOptimizerName(SparseOptimizerType t);
StatusOr<SparseOptimizerType> ParseSparseOptimizer(const std::string& name);

class SparseOptimizer {
 public:
  virtual ~SparseOptimizer() = default;
  // Optimizer-state floats stored after a row of `dim` floats.
  virtual int SlotFloats(int dim) const = 0;
  // How new rows' slots start (storage applies it at creation).
  virtual void ConfigureInit(storage::RowInitOptions* init) const = 0;
  // row: dim embedding floats then SlotFloats(dim) slots; grad: dim floats.
  virtual void Apply(float* row, const float* grad, int dim) const = 0;
  // Puts entry i's optimizer state where a pruned entry needs it: from then
  // on, zero gradients leave the entry at 0 (pruning with persistent masks).
  virtual void ResetEntry(float* row, int dim, int i) const = 0;
};

StatusOr<std::unique_ptr<SparseOptimizer>> NewSparseOptimizer(const SparseOptimizerOptions& opt);

}  // namespace ctrps::ps
