// DCN-v2 cross layer (Wang et al., "DCN V2", WWW 2021):
//   x_{l+1} = x0 * (W x_l + b) + x_l        (* element-wise)
// with W full ("<name>.weight", D x D) or low-rank W = U V^T ("<name>.u" and
// "<name>.v", each D x r), and b ("<name>.bias", D).
#pragma once

#include <string>

#include "worker/nn/dense_params.h"
#include "worker/nn/model.h"

namespace ctrps::worker {

class CrossLayer {
 public:
  CrossLayer() = default;
  // rank 0: full-rank W; otherwise W = U V^T with inner dimension `rank`.
  CrossLayer(DenseParamSet* params, const std::string& name, int dim, int rank);

  int dim() const { return dim_; }
  int rank() const { return rank_; }

  void Forward(const MatrixF& x0, const MatrixF& xl, MatrixF* out);
  // For the inputs of the last Forward: dxl = dout + W^T (dout * x0), then
  // dx0 += dout * (W xl + b): dx0 accumulates over the layers of a network,
  // so the caller adds it to the first layer's dxl. No two of dout, dx0 and
  // dxl may alias. Adds parameter gradients.
  void Backward(const MatrixF& x0, const MatrixF& xl, const MatrixF& dout, MatrixF* dx0,
                MatrixF* dxl);

  double FlopsPerExample() const;

 private:
  DenseParamSet* params_ = nullptr;
  int dim_ = 0, rank_ = 0;
  int w_ = -1, u_ = -1, v_ = -1, b_ = -1;
  MatrixF z_;   // W xl + b
  MatrixF h_;   // V^T xl (low rank)
  MatrixF dz_;  // dout * x0
  MatrixF dh_;  // U^T dz (low rank)
};

}  // namespace ctrps::worker
