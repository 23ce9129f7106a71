#include "worker/nn/loss.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace ctrps::worker {

double SigmoidCrossEntropyWithLogits(const Eigen::Ref<const VectorF>& logits,
                                     const Eigen::Ref<const VectorF>& labels, VectorF* dlogits) {
  const Eigen::Index B = logits.size();
  CHECK_EQ(labels.size(), B);
  if (dlogits != nullptr) dlogits->resize(B);
  if (B == 0) return 0.0;
  double loss = 0;
  const float inv_b = 1.0f / static_cast<float>(B);
  for (Eigen::Index i = 0; i < B; ++i) {
    const float z = logits[i], y = labels[i];
    loss += std::max(z, 0.0f) - y * z + std::log1p(std::exp(-std::fabs(z)));
    if (dlogits != nullptr) (*dlogits)[i] = (Sigmoid(z) - y) * inv_b;
  }
  return loss / static_cast<double>(B);
}

}  // namespace ctrps::worker
