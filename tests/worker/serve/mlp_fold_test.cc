// FoldDeadNeurons (worker/serve/mlp_fold.h): the folded network computes
// what the original does, and the neurons that cannot matter are gone.
#include "worker/serve/mlp_fold.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ctrps::worker::serve {
namespace {

std::vector<double> Forward(const std::vector<DenseLayer>& net, std::vector<double> x) {
  for (const DenseLayer& l : net) {
    std::vector<double> y(l.out);
    for (int o = 0; o < l.out; ++o) {
      double s = l.bias[o];
      for (int i = 0; i < l.in; ++i) s += double(l.w[static_cast<size_t>(i) * l.out + o]) * x[i];
      y[o] = l.relu ? std::max(s, 0.0) : s;
    }
    x = std::move(y);
  }
  return x;
}

DenseLayer Random(int out, int in, bool relu, double density, std::mt19937_64* rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> n(0, 1);
  DenseLayer l{out, in, relu, std::vector<float>(static_cast<size_t>(out) * in), {}};
  for (float& v : l.w) v = u(*rng) < density ? n(*rng) : 0.0f;
  for (int o = 0; o < out; ++o) l.bias.push_back(n(*rng));
  return l;
}

void SetRow(DenseLayer* l, int o, float v) {
  for (int i = 0; i < l->in; ++i) l->w[static_cast<size_t>(i) * l->out + o] = v;
}
void SetCol(DenseLayer* l, int i, float v) {
  for (int o = 0; o < l->out; ++o) l->w[static_cast<size_t>(i) * l->out + o] = v;
}

TEST(MlpFoldTest, FoldedNetworkComputesTheSameAndDropsWhatCannotMatter) {
  std::mt19937_64 rng(11);
  std::vector<DenseLayer> net = {Random(16, 20, true, 0.5, &rng), Random(12, 16, true, 0.5, &rng),
                                 Random(1, 12, false, 1.0, &rng)};
  SetRow(&net[0], 3, 0.0f);  // a constant relu(b) > 0: folded into layer 1's bias
  net[0].bias[3] = 0.7f;
  SetRow(&net[0], 5, 0.0f);  // a constant relu(b) = 0
  net[0].bias[5] = -0.4f;
  net[2].w[7] = 0.0f;        // layer 1's neuron 7 reaches nothing
  // Layer 0's neuron 9 feeds only layer 1's neuron 7: dropped in a second round.
  SetCol(&net[1], 9, 0.0f);
  net[1].w[static_cast<size_t>(9) * 12 + 7] = 2.0f;
  // Layer 1's neuron 4 reads only layer 0's neuron 3 (a constant): itself constant.
  SetRow(&net[1], 4, 0.0f);
  net[1].w[static_cast<size_t>(3) * 12 + 4] = 1.5f;
  const std::vector<DenseLayer> original = net;
  const std::vector<std::vector<int>> kept = FoldDeadNeurons(&net);
  auto has = [](const std::vector<int>& v, int x) { return std::count(v.begin(), v.end(), x) > 0; };
  EXPECT_FALSE(has(kept[0], 3));
  EXPECT_FALSE(has(kept[0], 5));
  EXPECT_FALSE(has(kept[0], 9));
  EXPECT_FALSE(has(kept[1], 7));
  EXPECT_FALSE(has(kept[1], 4));
  EXPECT_TRUE(has(kept[0], 0));
  EXPECT_EQ(kept[2], std::vector<int>{0});
  ASSERT_EQ(net[0].in, 20);
  EXPECT_EQ(net[0].out, static_cast<int>(kept[0].size()));
  EXPECT_EQ(net[1].in, net[0].out);
  EXPECT_EQ(net[2].in, net[1].out);
  std::normal_distribution<double> n(0, 1);
  for (int t = 0; t < 50; ++t) {
    std::vector<double> x(20);
    for (double& v : x) v = n(rng) > 0.3 ? n(rng) : 0.0;
    EXPECT_NEAR(Forward(net, x)[0], Forward(original, x)[0], 1e-5);
  }
}

TEST(MlpFoldTest, DenseNetworkIsUnchanged) {
  std::mt19937_64 rng(12);
  std::vector<DenseLayer> net = {Random(8, 5, true, 1.0, &rng), Random(1, 8, false, 1.0, &rng)};
  const std::vector<DenseLayer> original = net;
  FoldDeadNeurons(&net);
  ASSERT_EQ(net.size(), 2u);
  EXPECT_EQ(net[0].w, original[0].w);
  EXPECT_EQ(net[0].bias, original[0].bias);
  EXPECT_EQ(net[1].w, original[1].w);
  EXPECT_EQ(net[1].bias, original[1].bias);
}

// Every neuron of a layer dead: the output is the folded constant.
TEST(MlpFoldTest, AllNeuronsDeadLeavesAConstant) {
  std::mt19937_64 rng(13);
  std::vector<DenseLayer> net = {Random(6, 4, true, 0.0, &rng), Random(1, 6, false, 1.0, &rng)};
  const std::vector<DenseLayer> original = net;
  FoldDeadNeurons(&net);
  EXPECT_EQ(net[0].out, 0);
  EXPECT_EQ(net[1].in, 0);
  EXPECT_NEAR(Forward(net, {1, 2, 3, 4})[0], Forward(original, {1, 2, 3, 4})[0], 1e-6);
}

}  // namespace
}  // namespace ctrps::worker::serve
