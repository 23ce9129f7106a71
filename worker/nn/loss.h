// Sigmoid cross-entropy on logits, the CTR loss.
#pragma once

#include <cmath>

#include <Eigen/Core>

#include "worker/nn/model.h"

namespace ctrps::worker {

// Mean over the batch of max(z, 0) - y z + log(1 + exp(-|z|)) (stable for
// any z), labels y in [0, 1]. If dlogits is non-null it receives
// dLoss/dz = (sigmoid(z) - y) / B.
double SigmoidCrossEntropyWithLogits(const Eigen::Ref<const VectorF>& logits,
                                     const Eigen::Ref<const VectorF>& labels, VectorF* dlogits);

inline float Sigmoid(float z) {
  return z >= 0 ? 1.0f / (1.0f + std::exp(-z)) : std::exp(z) / (1.0f + std::exp(z));
}

}  // namespace ctrps::worker
