#include "compression/deeplight.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

namespace ctrps::compression {

using worker::ModelOptions;
using worker::ModelType;

namespace {

bool HasR(const ModelOptions& m) {
  return m.type == ModelType::kFwFM || m.type == ModelType::kDeepFwFM;
}

bool HasEmbedding(const ModelOptions& m, int f) {
  if (m.type == ModelType::kLR || m.emb_dims.empty() || m.emb_dims[f] == 0) return false;
  return !(m.type == ModelType::kDLRM && f < m.num_dense_fields);
}

}  // namespace

Status ValidateDeepLight(const DeepLightOptions& o, const ModelOptions& m, const std::string& where) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return Status::InvalidArgument(where + "." + field + ": " + what);
  };
  if (!(o.mlp_sparsity >= 0 && o.mlp_sparsity < 1))
    return bad("mlp_sparsity", std::to_string(o.mlp_sparsity) + " out of [0, 1)");
  if (!(o.pair_ratio >= 0) || o.pair_ratio * o.mlp_sparsity >= 1)
    return bad("pair_ratio", std::to_string(o.pair_ratio) +
                                 ": expected >= 0 with pair_ratio * mlp_sparsity < 1");
  if (!(o.embedding_ratio >= 0) || o.embedding_ratio * o.mlp_sparsity >= 1)
    return bad("embedding_ratio", std::to_string(o.embedding_ratio) +
                                      ": expected >= 0 with embedding_ratio * mlp_sparsity < 1");
  if (o.every_steps < 1) return bad("every_steps", "must be >= 1");
  // Below 1 is allowed: a short run reaches its target within fewer than
  // 458 steps (S_t = 0.99 S at t = 458 damping_steps).
  if (!(o.damping_steps > 0) || !std::isfinite(o.damping_steps))
    return bad("damping_steps", std::to_string(o.damping_steps) + ": must be > 0");
  if (o.pair_ratio > 0 && !HasR(m))
    return bad("pair_ratio", std::string(worker::ModelTypeName(m.type)) +
                                 " has no field-pair matrix R to prune (FWFM and DEEPFWFM have); "
                                 "set pair_ratio: 0");
  bool mlp = false;
  for (const auto& l : worker::LinearLayers(m)) mlp |= l.hidden;
  if (o.mlp_sparsity > 0 && !mlp)
    return bad("mlp_sparsity", std::string(worker::ModelTypeName(m.type)) + " has no MLP to prune");
  bool emb = false;
  for (int f = 0; f < m.num_fields; ++f) emb |= HasEmbedding(m, f);
  if (o.embedding_ratio > 0 && !emb)
    return bad("embedding_ratio", std::string(worker::ModelTypeName(m.type)) +
                                      " has no embedding entries to prune");
  return Status::OK();
}

double ScheduledSparsity(double final_sparsity, int64_t t, double damping_steps) {
  if (t <= 0) return 0;
  return final_sparsity * (1.0 - std::pow(0.99, static_cast<double>(t) / damping_steps));
}

uint64_t CountToPrune(double fraction, uint64_t n) {
  if (!(fraction > 0)) return 0;
  const double k = std::floor(fraction * static_cast<double>(n));
  return k >= static_cast<double>(n) ? n : static_cast<uint64_t>(k);
}

uint32_t KthSmallest(std::vector<uint32_t> bits, uint64_t k) {
  std::nth_element(bits.begin(), bits.begin() + (k - 1), bits.end());
  return bits[k - 1];
}

uint64_t PruneSmallest(float* w, size_t n, double fraction) {
  const uint64_t k = CountToPrune(fraction, n);
  uint64_t zeros = 0;
  if (k > 0) {
    std::vector<uint32_t> bits(n);
    for (size_t i = 0; i < n; ++i) bits[i] = ps::MagnitudeBits(w[i]);
    const uint32_t t = KthSmallest(bits, k);
    for (size_t i = 0; i < n; ++i)
      if (ps::MagnitudeBits(w[i]) <= t) w[i] = 0.0f;
  }
  for (size_t i = 0; i < n; ++i) zeros += w[i] == 0.0f;
  return zeros;
}

uint64_t PrunePairs(float* r, int F, double fraction) {
  auto at = [&](int i, int j) -> float& { return r[static_cast<size_t>(j) * F + i]; };
  std::vector<uint32_t> bits;
  for (int j = 0; j < F; ++j)
    for (int i = 0; i < j; ++i) bits.push_back(ps::MagnitudeBits(0.5f * (at(i, j) + at(j, i))));
  const uint64_t k = CountToPrune(fraction, bits.size());
  uint64_t zeros = 0;
  const uint32_t t = k > 0 ? KthSmallest(bits, k) : 0;
  for (int j = 0; j < F; ++j)
    for (int i = 0; i < j; ++i) {
      if (k > 0 && ps::MagnitudeBits(0.5f * (at(i, j) + at(j, i))) <= t) at(i, j) = at(j, i) = 0.0f;
      zeros += at(i, j) == 0.0f && at(j, i) == 0.0f;
    }
  return zeros;
}

StatusOr<bool> GlobalThreshold(ps::EmbeddingClient* client, const ps::EntrySet& set, double fraction,
                               uint32_t* bits, uint64_t* total, uint64_t* at_or_below) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> h0, client->EntryHistogram(set, 0, 0));
  *total = 0;
  for (uint64_t v : h0) *total += v;
  const uint64_t k = CountToPrune(fraction, *total);
  if (k == 0) return false;
  uint64_t before = 0;
  uint32_t high = 0;
  for (; high < h0.size(); ++high) {
    if (before + h0[high] >= k) break;
    before += h0[high];
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> h1, client->EntryHistogram(set, 1, high));
  uint64_t cum = before;
  uint32_t low = 0;
  for (; low < h1.size(); ++low) {
    if (cum + h1[low] >= k) break;
    cum += h1[low];
  }
  if (low >= h1.size())
    return Status::Internal("the refined histogram of bucket " + std::to_string(high) +
                            " does not hold the k-th entry: the tables changed between rounds");
  *bits = (high << 16) | low;
  if (at_or_below) *at_or_below = cum + h1[low];
  return true;
}

DeepLightPruner::DeepLightPruner(DeepLightOptions options, worker::Model* model,
                                 ps::EmbeddingClient* client, ps::WorkerGroup* group, bool chief,
                                 std::string scratch_dir, MetricsWriter* metrics)
    : o_(options), model_(model), client_(client), group_(group), chief_(chief),
      scratch_(std::move(scratch_dir)), metrics_(metrics) {
  const ModelOptions& m = model->options();
  for (int f = 0; f < m.num_fields; ++f)
    if (HasEmbedding(m, f)) {
      embeddings_.tables.push_back(m.TableOf(f));
      fields_.push_back(f);
      embeddings_.skip.push_back(model->RowWidth(f) - m.emb_dims[f]);
    }
  for (const worker::DenseParamInfo& p : model->DenseParams())
    if (p.name == "fwfm.r") r_offset_ = static_cast<int>(p.offset);
  if (o_.persistent_masks) RebuildDenseMasks();
}

std::vector<std::pair<size_t, size_t>> DeepLightPruner::MlpWeights() const {
  std::vector<std::pair<size_t, size_t>> out;
  const auto layers = worker::LinearLayers(model_->options());
  for (const worker::DenseParamInfo& p : model_->DenseParams()) {
    // "<mlp>.<l>.weight" or a low-rank half "<mlp>.<l>.a.weight" of a hidden layer.
    for (const auto& l : layers) {
      if (!l.hidden) continue;
      if (p.name == l.layer + ".weight" || p.name == l.layer + ".a.weight" ||
          p.name == l.layer + ".b.weight")
        out.push_back({p.offset, static_cast<size_t>(p.rows) * p.cols});
    }
  }
  return out;
}

void DeepLightPruner::RebuildDenseMasks() {
  // After a resume, pruned dense weights are exactly the zeros.
  dense_mask_.assign(model_->dense_size(), 0);
  const float* w = model_->dense_values();
  for (const auto& [off, n] : MlpWeights())
    for (size_t i = 0; i < n; ++i) dense_mask_[off + i] = w[off + i] == 0.0f;
  if (r_offset_ >= 0) {
    const int F = model_->options().num_fields;
    for (int i = 0; i < F * F; ++i) dense_mask_[r_offset_ + i] = w[r_offset_ + i] == 0.0f;
  }
}

void DeepLightPruner::ApplyDenseMasks() {
  float* w = model_->dense_values();
  for (size_t i = 0; i < dense_mask_.size(); ++i)
    if (dense_mask_[i]) w[i] = 0.0f;
}

void DeepLightPruner::BeforePush(worker::SparseBatch* batch) {
  if (!o_.persistent_masks || o_.embedding_ratio <= 0) return;
  // Pruned entries (exactly 0) get no gradient, so they stay 0.
  for (size_t i = 0; i < embeddings_.tables.size(); ++i) {
    worker::FieldRows& fr = batch->fields[fields_[i]];
    const int skip = embeddings_.skip[i];
    const Eigen::Index w = fr.rows.rows();
    for (Eigen::Index u = 0; u < fr.rows.cols(); ++u)
      for (Eigen::Index j = skip; j < w; ++j)
        if (fr.rows(j, u) == 0.0f) fr.grads(j, u) = 0.0f;
  }
}

Status DeepLightPruner::AfterStep(int64_t step) {
  if (o_.persistent_masks) ApplyDenseMasks();
  const int64_t t = step - o_.start_step;
  if (t <= 0 || t % o_.every_steps != 0) return Status::OK();
  return PruneAt(step);
}

Status DeepLightPruner::AfterEpoch(int64_t step) {
  if (step - o_.start_step <= 0 || step == last_pruned_step_) return Status::OK();
  return PruneAt(step);
}

Status DeepLightPruner::PruneAt(int64_t step) {
  const double s = ScheduledSparsity(o_.mlp_sparsity, step - o_.start_step, o_.damping_steps);
  SparsityReport r;
  r.step = step;
  r.target = s;
  // Dense parts: every worker holds the same replica and prunes it alike.
  float* w = model_->dense_values();
  if (o_.mlp_sparsity > 0)
    for (const auto& [off, n] : MlpWeights()) {
      r.mlp_weights += n;
      r.mlp_nonzero += n - PruneSmallest(w + off, n, s);
    }
  if (r_offset_ >= 0 && o_.pair_ratio > 0) {
    const int F = model_->options().num_fields;
    r.pairs = static_cast<uint64_t>(F) * (F - 1) / 2;
    r.pairs_nonzero = r.pairs - PrunePairs(w + r_offset_, F, s * o_.pair_ratio);
  }
  if (o_.persistent_masks) RebuildDenseMasks();
  // Embeddings: one global threshold over every server's shards.
  if (o_.embedding_ratio > 0) {
    const bool many = group_ != nullptr && group_->size() > 1;
    const std::string what = "the embedding pruning at step " + std::to_string(step);
    if (many) RETURN_IF_ERROR(group_->AllTrue(true, what).status());
    if (chief_ || !many) {
      uint32_t bits = 0;
      ASSIGN_OR_RETURN(bool any, GlobalThreshold(client_, embeddings_, s * o_.embedding_ratio,
                                                 &bits, &r.embedding_entries, &r.embedding_zero));
      if (any) {
        ASSIGN_OR_RETURN(r.embedding_zeroed,
                         client_->PruneEntries(embeddings_, bits, o_.persistent_masks, scratch_));
      }
    }
    if (many) RETURN_IF_ERROR(group_->AllTrue(true, what).status());
  }
  last_pruned_step_ = step;
  last_ = r;
  if (metrics_) {
    JsonLine line;
    line.Add("event", "prune").Add("step", step).Add("target", s)
        .Add("mlp_weights", r.mlp_weights).Add("mlp_nonzero", r.mlp_nonzero)
        .Add("pairs", r.pairs).Add("pairs_nonzero", r.pairs_nonzero)
        .Add("embedding_entries", r.embedding_entries).Add("embedding_zero", r.embedding_zero)
        .Add("embedding_zeroed", r.embedding_zeroed);
    metrics_->Write(line);
  }
  if ((step - o_.start_step) % (10 * o_.every_steps) == 0)
    spdlog::info("deeplight step {}: target {:.4f}, MLP {}/{} non-zero, pairs {}/{} non-zero",
                 step, s, r.mlp_nonzero, r.mlp_weights, r.pairs_nonzero, r.pairs);
  return Status::OK();
}

}  // namespace ctrps::compression
