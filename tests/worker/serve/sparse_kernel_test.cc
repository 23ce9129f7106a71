// The sparse serving kernels (sparse_kernels.h) against dense arithmetic in
// double: CSR SpMV, SELL (8 or 16 lanes, as built), the dense kernels, the
// blocked form and the 64-example tiles, at every density from empty to
// full; SELL's 16-bit and 32-bit column paths either side of 65536 columns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "worker/serve/sparse_kernels.h"

namespace ctrps::worker::serve {
namespace {

std::vector<float> RandomSparse(int rows, int cols, double density, std::mt19937_64* rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> w(static_cast<size_t>(rows) * cols);
  for (float& v : w) v = u(*rng) < density ? n(*rng) : 0.0f;
  return w;
}

// y = W x + b (double), ReLU if relu.
std::vector<double> Reference(const std::vector<float>& w, int rows, int cols, const float* b,
                              const float* x, bool relu) {
  std::vector<double> y(rows);
  for (int o = 0; o < rows; ++o) {
    double s = b[o];
    for (int i = 0; i < cols; ++i) s += double(w[static_cast<size_t>(i) * rows + o]) * x[i];
    y[o] = relu ? std::max(s, 0.0) : s;
  }
  return y;
}

TEST(SparseKernelTest, EveryKernelComputesTheDenseProduct) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (int rows : {1, 7, 8, 16, 17, 37, 400})
    for (int cols : {1, 9, 53, 390})
      for (double density : {0.0, 0.01, 0.1, 0.6, 1.0})
        for (bool relu : {false, true}) {
          const std::vector<float> w = RandomSparse(rows, cols, density, &rng);
          std::vector<float> bias(rows), x(cols), xt(static_cast<size_t>(cols) * kSparseTile);
          for (float& v : bias) v = n(rng);
          for (float& v : x) v = n(rng) > 0 ? n(rng) : 0.0f;  // ReLU-like zeros
          for (float& v : xt) v = n(rng);
          const CsrMatrix c = CsrMatrix::FromDense(w.data(), rows, cols);
          EXPECT_EQ(c.ToDense(), w);
          const std::vector<double> ref = Reference(w, rows, cols, bias.data(), x.data(), relu);
          const int padded = SellScratchFloats(rows);
          std::vector<float> y(padded), scratch(padded);
          auto expect_near = [&](const char* kernel) {
            for (int o = 0; o < rows; ++o)
              ASSERT_NEAR(y[o], ref[o], 1e-4 * (1 + std::fabs(ref[o])))
                  << kernel << " " << rows << "x" << cols << " density " << density << " row "
                  << o;
          };
          SpMV(c, bias.data(), x.data(), relu, y.data());
          expect_near("SpMV");
          const SellMatrix s = SellMatrix::FromCsr(c, bias.data());
          SellMV(s, x.data(), relu, scratch.data(), y.data());
          expect_near("SellMV");
          DenseMV(w.data(), rows, cols, bias.data(), x.data(), relu, y.data());
          expect_near("DenseMV");
          const Blocked8Matrix b = Blocked8Matrix::FromDense(w.data(), rows, cols);
          Blocked8MV(b, bias.data(), x.data(), relu, y.data());
          expect_near("Blocked8MV");
          // Tiles: example t is column t of the feature-major tile.
          std::vector<float> yt(static_cast<size_t>(rows) * kSparseTile),
              yd(static_cast<size_t>(rows) * kSparseTile);
          SpMMTile(c, bias.data(), xt.data(), relu, yt.data());
          DenseMMTile(w.data(), rows, cols, bias.data(), xt.data(), relu, yd.data());
          for (int t = 0; t < kSparseTile; t += 13) {
            std::vector<float> col(cols);
            for (int i = 0; i < cols; ++i) col[i] = xt[static_cast<size_t>(i) * kSparseTile + t];
            const std::vector<double> r = Reference(w, rows, cols, bias.data(), col.data(), relu);
            for (int o = 0; o < rows; ++o) {
              ASSERT_NEAR(yt[static_cast<size_t>(o) * kSparseTile + t], r[o], 1e-4 * (1 + std::fabs(r[o])));
              ASSERT_NEAR(yd[static_cast<size_t>(o) * kSparseTile + t], r[o], 1e-4 * (1 + std::fabs(r[o])));
            }
          }
        }
}

// SELL reads 16-bit columns up to 65536 columns and 32-bit ones (the
// gather instruction) past that; both paths, either side of the boundary.
TEST(SparseKernelTest, SellHandlesNarrowAndWideColumnIndices) {
  std::mt19937_64 rng(4);
  std::normal_distribution<float> n(0, 1);
  for (int cols : {65535, 65536, 65537, 70000}) {
    const int rows = 13;
    std::vector<float> w = RandomSparse(rows, cols, 0.0005, &rng);
    w[static_cast<size_t>(cols - 1) * rows + 2] = 1.5f;  // the last column is read
    std::vector<float> bias(rows), x(cols);
    for (float& v : bias) v = n(rng);
    for (float& v : x) v = n(rng);
    const CsrMatrix c = CsrMatrix::FromDense(w.data(), rows, cols);
    const SellMatrix s = SellMatrix::FromCsr(c, bias.data());
    EXPECT_EQ(s.col16.empty(), cols > 65536) << cols;
    const std::vector<double> ref = Reference(w, rows, cols, bias.data(), x.data(), false);
    std::vector<float> y(rows), scratch(SellScratchFloats(rows));
    SellMV(s, x.data(), false, scratch.data(), y.data());
    for (int o = 0; o < rows; ++o)
      ASSERT_NEAR(y[o], ref[o], 1e-4 * (1 + std::fabs(ref[o]))) << cols << " row " << o;
  }
}

}  // namespace
}  // namespace ctrps::worker::serve
