// Magnitude pruning as DeepLight's last pruning step leaves a model
// (COMPRESSION.md section 3), for the serving tests and bench/inference_bench
// --sparse: a stand-in for compression/'s gradual pruning, since serving
// derives its sparse structures from the zeros alone.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ps/client.h"
#include "worker/nn/model.h"

namespace ctrps::worker::serve::testing {

// Zeros the fraction `frac` of the entries of v with the smallest |v| (ties by position).
inline void ZeroSmallest(std::vector<float*>& v, double frac) {
  const size_t k = static_cast<size_t>(frac * v.size());
  if (k == 0) return;
  std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), [](const float* a, const float* b) {
    return std::fabs(*a) < std::fabs(*b) || (std::fabs(*a) == std::fabs(*b) && a < b);
  });
  for (size_t i = 0; i < k; ++i) *v[i] = 0.0f;
}

// Per hidden MLP weight matrix (the output layers kept, biases kept): the
// fraction `mlp` of smallest |w|. FwFM R: the fraction `pairs` of field
// pairs with the smallest |(R_ij + R_ji) / 2|, zeroed in both halves.
// Embeddings: the fraction `emb` of all second-order entries of all fields,
// one global threshold (linear weights kept).
[[nodiscard]] inline Status PruneByMagnitude(Model* model, ps::EmbeddingClient* client,
                                             double mlp, double pairs, double emb) {
  const ModelOptions& o = model->options();
  float* values = model->dense_values();
  for (const LinearLayerShape& l : LinearLayers(o)) {
    if (!l.hidden || l.rank != 0) continue;
    for (const DenseParamInfo& p : model->DenseParams()) {
      if (p.name != l.layer + ".weight") continue;
      std::vector<float*> w;
      for (size_t i = 0; i < static_cast<size_t>(p.rows) * p.cols; ++i)
        w.push_back(values + p.offset + i);
      ZeroSmallest(w, mlp);
    }
  }
  for (const DenseParamInfo& p : model->DenseParams()) {
    if (p.name != "fwfm.r") continue;
    const int F = p.rows;
    float* r = values + p.offset;
    std::vector<float> sym;
    std::vector<float*> ptr;
    std::vector<std::pair<int, int>> ij;
    for (int i = 0; i < F; ++i)
      for (int j = i + 1; j < F; ++j) {
        sym.push_back(0.5f * (r[static_cast<size_t>(j) * F + i] + r[static_cast<size_t>(i) * F + j]));
        ij.push_back({i, j});
      }
    for (float& s : sym) ptr.push_back(&s);
    ZeroSmallest(ptr, pairs);
    for (size_t k = 0; k < sym.size(); ++k)
      if (sym[k] == 0.0f) {
        r[static_cast<size_t>(ij[k].second) * F + ij[k].first] = 0.0f;
        r[static_cast<size_t>(ij[k].first) * F + ij[k].second] = 0.0f;
      }
  }
  if (emb <= 0) return Status::OK();
  std::vector<std::vector<Key>> keys(o.num_fields);
  std::vector<std::vector<float>> rows(o.num_fields);
  std::vector<float*> entries;
  for (int f = 0; f < o.num_fields; ++f) {
    const int w = model->RowWidth(f);
    RETURN_IF_ERROR(client->ScanRows(f, [&](Key k, const float* r) {
      keys[f].push_back(k);
      rows[f].insert(rows[f].end(), r, r + w);
      return true;
    }));
  }
  for (int f = 0; f < o.num_fields; ++f) {
    const int w = model->RowWidth(f);
    const int first = w - (o.emb_dims.empty() ? 0 : o.emb_dims[f]);
    for (size_t i = 0; i < keys[f].size(); ++i)
      for (int k = first; k < w; ++k) entries.push_back(&rows[f][i * w + k]);
  }
  ZeroSmallest(entries, emb);
  for (int f = 0; f < o.num_fields; ++f)
    RETURN_IF_ERROR(client->LoadRows(f, keys[f].data(), keys[f].size(), rows[f].data()));
  return Status::OK();
}

}  // namespace ctrps::worker::serve::testing
