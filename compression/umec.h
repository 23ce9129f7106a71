// UMEC: resource-constrained selection of input fields and neurons
// (COMPRESSION.md section 4; Shen et al., ICLR 2021).
//
// Groups live in the model's main MLP ("mlp", DLRM's "top_mlp"): in its
// first layer the input columns of one field form a group (where that MLP
// reads the fields directly: DeepFM, DeepFwFM, DLRM with concatenation);
// in every later layer one input column is one group (removing it removes
// a neuron of the layer below: its row there and its bias).
//
// Variables: s_l >= 0 (layer l drops ceil(s_l) groups), y_l >= 0, z >= 0.
// Each step, after the optimizer's step on W, in this order:
//   1. proximal shrink: the ceil(s_l) groups of layer l with the smallest
//      squared norms are divided by (1 + 2 lr y_l);
//   2. s_l -= lr_s * clip(y_l * n_(ceil(s_l)+1) + z dR/ds_l, -1, 1), clamped
//      to [0, groups - 1], where n_(k) is the k-th smallest squared group
//      norm and R(s) the MLP multiply-adds normalised by the dense model's,
//      differentiated straight through the ceilings;
//   3. y_l += lr_y * (the sum of the ceil(s_l) smallest squared norms),
//      z += lr_z * (R(s) - budget), both kept >= 0.
// Norms are float64 sums; ties are broken by group index, so every worker
// (their dense weights are identical) takes the same decisions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics_writer.h"
#include "common/status.h"
#include "worker/nn/model.h"
#include "worker/train/trainer_hook.h"

namespace ctrps::compression {

// How the groups to remove are chosen: UMEC, or a baseline at the same
// resource budget (COMPRESSION.md section 4).
enum class UmecSelector {
  kPrimalDual,  // UMEC: the primal-dual training, then the ceil(s_l) weakest per layer
  kMagnitude,   // magnitude pruning: no constraint in training; then the weakest groups
                // (least squared norm per multiply-add saved) until the budget is met
  kUniform,     // uniformly thinner layers: every neuron layer keeps the same fraction
                // (its strongest neurons), the largest fraction within the budget; fields kept
  kGroupLasso,  // group lasso on the groups in training (proximal group soft-threshold
                // each step), then the weakest groups until the budget is met
};

struct UmecOptions {
  UmecSelector selector = UmecSelector::kPrimalDual;
  double group_lasso = 1e-3;  // kGroupLasso: lambda of lambda * sum_g ||w_g||_2
  // Resource budget: multiply-adds of the MLPs as a fraction of the dense
  // model's, (0, 1].
  double budget = 0.5;
  // Input selection alone: only the first layer's field groups move.
  bool input_only = false;
  // Input selection: drop exactly this many fields (> 0): the budget is the
  // resource with that many fields gone (overrides `budget`).
  int fields_to_drop = 0;
  double lr = 0.1;     // W's learning rate, in the proximal shrink
  double lr_s = 0.05;  // the paper's defaults
  double lr_y = 0.1;
  double lr_z = 2.0;
  int64_t start_step = 0;       // steps before the first update (warm-up)
  int64_t log_every_steps = 100;
};

// One layer of groups: the input columns of a weight matrix (out x in,
// column-major in the model's dense buffer).
struct UmecLayer {
  std::string layer;            // "mlp.0"
  int index = 0;                // its position in the main MLP (0: the first layer)
  size_t weight_offset = 0;     // into the dense values
  int rows = 0, cols = 0;       // out x in
  std::vector<int> begin;       // per group: its first column
  std::vector<int> width;       // per group: its columns
  std::vector<int> field;       // per group (field groups): the model field; else empty
  bool fields() const { return !field.empty(); }
  int groups() const { return static_cast<int>(begin.size()); }
};

// The groups and the resource model of a network.
class UmecNetwork {
 public:
  // Refuses models without a main MLP, low-rank layers or embedding
  // decoders (run UMEC before AFM), and input_only where the MLP does not
  // read the fields. `where` prefixes the messages.
  static StatusOr<UmecNetwork> Describe(const worker::Model& model, bool input_only,
                                        const std::string& where);

  const std::vector<UmecLayer>& layers() const { return layers_; }
  // Multiply-adds per example of every MLP of the dense model.
  double dense_macs() const { return dense_macs_; }
  // Multiply-adds with dropped_width[l] input columns of layer l gone (for a
  // neuron layer l also the rows of layer l - 1 and their outputs).
  double Macs(const std::vector<int>& dropped_width) const;
  // Macs / dense_macs.
  double Resource(const std::vector<int>& dropped_width) const {
    return Macs(dropped_width) / dense_macs_;
  }
  // The smallest resource reachable (every layer keeping one group: its widest).
  double MinResource() const;
  // d R / d (dropped groups of layer l), straight through, when layer l's
  // next group to go is `next_width` columns wide.
  double ResourceSlope(const std::vector<int>& dropped_width, int l, int next_width) const;

 private:
  std::vector<UmecLayer> layers_;
  // Per layer of the main MLP, in order: its shape; layers_[l] covers
  // main_[l] when l < layers_.size().
  std::vector<int> rows_, cols_;
  double fixed_macs_ = 0;  // the other MLPs (DLRM's bottom MLP)
  double dense_macs_ = 0;
};

// Squared norms (float64) of each group of `layer` in `w` (dense values).
std::vector<double> GroupNorms(const UmecLayer& layer, const float* w);
// Group indices by ascending squared norm, ties by index.
std::vector<int> Weakest(const std::vector<double>& norms);

// The primal-dual state.
struct UmecState {
  std::vector<double> s, y;  // per layer
  double z = 0;
  int64_t updates = 0;
  std::string Serialize() const;
  [[nodiscard]] Status Parse(const std::string& bytes, size_t layers);
};

// What one update saw (after it): per layer ceil(s), the least-groups sum.
struct UmecReport {
  int64_t step = 0;
  std::vector<int> dropped;      // ceil(s_l)
  std::vector<double> least;     // least-groups sums
  double resource = 0;           // R(ceil(s)) after the update
  double budget = 0;
};

// The groups to remove.
struct UmecSelection {
  std::vector<std::vector<int>> dropped;  // per layer: group indices, ascending
  double resource = 0;                    // R of the selection
  int forced = 0;  // groups added past ceil(s) to meet the budget
};

class UmecSolver : public worker::TrainerHook {
 public:
  // The network describes `model`, whose dense values the solver changes.
  UmecSolver(UmecOptions options, UmecNetwork network, worker::Model* model,
             MetricsWriter* metrics);

  // The effective budget (fields_to_drop turned into a resource).
  double budget() const { return budget_; }
  const UmecState& state() const { return state_; }
  const UmecNetwork& network() const { return net_; }
  const UmecReport& last() const { return last_; }

  // One primal-dual update (steps 1-3 above) on the model's dense values.
  void Update(int64_t step);
  // One proximal group-lasso step: w_g *= max(0, 1 - lr lambda / ||w_g||).
  void GroupLassoStep();

  Status AfterStep(int64_t step) override;
  std::string SaveState() const override { return state_.Serialize(); }
  Status RestoreState(const std::string& bytes) override {
    return state_.Parse(bytes, net_.layers().size());
  }

  // The final choice. UMEC: per layer the ceil(s_l) weakest groups, then,
  // while the resource is above the budget, the group whose removal costs
  // the least squared norm per multiply-add saved (counted in `forced`).
  // Magnitude and group lasso: that greedy choice from nothing removed.
  // Uniform: see UmecSelector.
  UmecSelection Select() const;

 private:
  UmecSelection SelectUniform() const;

  UmecOptions o_;
  UmecNetwork net_;
  worker::Model* model_;
  MetricsWriter* metrics_;
  double budget_ = 0;
  UmecState state_;
  UmecReport last_;
};

// Checks the options against the network (budget in (0, 1] and reachable,
// fields_to_drop below the fields), naming the setting.
[[nodiscard]] Status ValidateUmec(const UmecOptions& o, const UmecNetwork& net,
                                  const std::string& where);

// Physical removal: the model without the selected groups (thinner layers,
// fewer fields; the dense weights of what stays copied, so the outputs of
// the kept units are unchanged when the removed groups were zero).
struct UmecSurgery {
  worker::ModelOptions options;
  std::unique_ptr<worker::Model> model;
  std::vector<int> dropped_fields;  // model fields of the old model, ascending
  std::vector<int> neurons_kept;    // per hidden layer of the main MLP
};
StatusOr<UmecSurgery> RemoveGroups(const worker::Model& old, const UmecNetwork& net,
                                   const UmecSelection& selection);

}  // namespace ctrps::compression
