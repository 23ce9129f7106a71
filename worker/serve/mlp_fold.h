// Load-time simplification of a pruned MLP for serving (DeepLight,
// COMPRESSION.md section 3): magnitude pruning leaves hidden neurons that
// cannot depend on the input or cannot reach the output, and removing them
// is exact:
//  - a neuron whose weight row is all zero outputs a constant, act(b); its
//    contribution act(b) W'(:, o) is added to the next layer's bias and the
//    neuron is dropped with its column there;
//  - a neuron whose column in the next layer is all zero is dropped.
// Repeated until nothing changes (a drop can empty another row or column).
// The result equals the original network up to float summation order.
#pragma once

#include <vector>

namespace ctrps::worker::serve {

struct DenseLayer {
  int out = 0, in = 0;
  bool relu = false;
  std::vector<float> w;     // out x in, column-major (w[i * out + o])
  std::vector<float> bias;  // out
};

// layers[l].in == layers[l - 1].out. Every layer but the last may lose
// neurons (the last layer's outputs are the network's). Returns, per layer,
// the original index of each kept output (the last layer: all of them).
std::vector<std::vector<int>> FoldDeadNeurons(std::vector<DenseLayer>* layers);

}  // namespace ctrps::worker::serve
