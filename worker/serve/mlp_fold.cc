#include "worker/serve/mlp_fold.h"

#include <algorithm>

#include "common/check.h"

namespace ctrps::worker::serve {

std::vector<std::vector<int>> FoldDeadNeurons(std::vector<DenseLayer>* layers) {
  std::vector<DenseLayer>& L = *layers;
  const size_t n = L.size();
  for (size_t l = 1; l < n; ++l) CHECK_EQ(L[l].in, L[l - 1].out) << "layer " << l;
  // alive[l][o]: output o of layer l is kept (the last layer's always).
  std::vector<std::vector<char>> alive(n);
  for (size_t l = 0; l < n; ++l) alive[l].assign(L[l].out, 1);
  auto at = [&](size_t l, int o, int i) -> float& {
    return L[l].w[static_cast<size_t>(i) * L[l].out + o];
  };
  auto input_alive = [&](size_t l, int i) { return l == 0 || alive[l - 1][i]; };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t l = 0; l + 1 < n; ++l)
      for (int o = 0; o < L[l].out; ++o) {
        if (!alive[l][o]) continue;
        bool row_empty = true;
        for (int i = 0; i < L[l].in && row_empty; ++i)
          row_empty = !input_alive(l, i) || at(l, o, i) == 0.0f;
        bool col_empty = true;
        for (int p = 0; p < L[l + 1].out && col_empty; ++p)
          col_empty = !alive[l + 1][p] || at(l + 1, p, o) == 0.0f;
        if (!row_empty && !col_empty) continue;
        if (row_empty && !col_empty) {
          const float b = L[l].bias[o];
          const float c = L[l].relu ? std::max(b, 0.0f) : b;
          if (c != 0.0f)
            for (int p = 0; p < L[l + 1].out; ++p)
              if (alive[l + 1][p]) L[l + 1].bias[p] += at(l + 1, p, o) * c;
        }
        alive[l][o] = 0;
        changed = true;
      }
  }
  // Compact: kept rows of each layer, kept columns (its inputs' kept outputs).
  std::vector<std::vector<int>> kept(n);
  for (size_t l = 0; l < n; ++l)
    for (int o = 0; o < L[l].out; ++o)
      if (alive[l][o]) kept[l].push_back(o);
  for (size_t l = 0; l < n; ++l) {
    std::vector<int> cols;
    if (l == 0) {
      for (int i = 0; i < L[0].in; ++i) cols.push_back(i);
    } else {
      cols = kept[l - 1];
    }
    DenseLayer c;
    c.out = static_cast<int>(kept[l].size());
    c.in = static_cast<int>(cols.size());
    c.relu = L[l].relu;
    c.w.resize(static_cast<size_t>(c.out) * c.in);
    for (int i = 0; i < c.in; ++i)
      for (int o = 0; o < c.out; ++o)
        c.w[static_cast<size_t>(i) * c.out + o] = at(l, kept[l][o], cols[i]);
    for (int o : kept[l]) c.bias.push_back(L[l].bias[o]);
    L[l] = std::move(c);
  }
  return kept;
}

}  // namespace ctrps::worker::serve
