// Internal: what every model implementation shares, and the per-family
// factories NewModel dispatches to. Not for use outside worker/nn.
#pragma once

#include <memory>
#include <vector>

#include "worker/nn/dense_params.h"
#include "worker/nn/mlp.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

class ModelBase : public Model {
 public:
  explicit ModelBase(const ModelOptions& options) : options_(options) {}

  const ModelOptions& options() const override { return options_; }
  const std::vector<DenseParamInfo>& DenseParams() const override { return params_.infos(); }
  float* dense_values() override { return params_.values(); }
  float* dense_grads() override { return params_.grads(); }
  size_t dense_size() const override { return params_.size(); }
  Status SetLayerTaps(const std::vector<std::pair<std::string, MatrixF*>>& taps) override;
  Status SetServingKernels(
      const std::vector<std::pair<std::string, const LinearKernel*>>& kernels) override;

 protected:
  ModelOptions options_;
  DenseParamSet params_;
  std::vector<Mlp*> mlps_;  // every MLP of the model, for SetLayerTaps (set by each model)
  MatrixF dlogits_row_;  // 1 x B copy of dlogits for an MLP's Backward
};

// The ranks of the MLP `prefix` ("mlp") with num_layers layers, from
// options.low_rank (empty when every layer is full).
std::vector<MlpLayerRank> MlpRanks(const ModelOptions& options, const std::string& prefix,
                                   int num_layers);

// options must be valid (ModelOptions::Validate).
// LR, FM, FwFM, DeepFM, DeepFwFM.
std::unique_ptr<Model> NewFactorModel(const ModelOptions& options);
std::unique_ptr<Model> NewDcnV2Model(const ModelOptions& options);
std::unique_ptr<Model> NewDlrmModel(const ModelOptions& options);

}  // namespace ctrps::worker
