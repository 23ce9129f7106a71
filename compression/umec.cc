#include "compression/umec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <spdlog/spdlog.h>

namespace ctrps::compression {

using worker::LinearLayerShape;
using worker::ModelOptions;
using worker::ModelType;

namespace {

// The main MLP's name, and whether its first layer reads the fields.
struct MainMlp {
  std::string prefix;
  bool reads_fields = false;
  int fixed_columns = 0;  // leading input columns that are no field (DLRM's bottom output)
  int first_field = 0;    // the first field among its inputs
};

StatusOr<MainMlp> MainMlpOf(const ModelOptions& o, const std::string& where) {
  switch (o.type) {
    case ModelType::kDeepFM:
    case ModelType::kDeepFwFM:
      return MainMlp{"mlp", true, 0, 0};
    case ModelType::kDCNv2:
      return MainMlp{"mlp", false, 0, 0};
    case ModelType::kDLRM:
      return MainMlp{"top_mlp", o.dlrm_interaction_cat,
                     o.num_dense_fields > 0 ? o.FieldDim(o.num_dense_fields) : 0,
                     o.num_dense_fields};
    default:
      return Status::InvalidArgument(where + ": " + worker::ModelTypeName(o.type) +
                                     " has no MLP for UMEC to select from (DEEPFM, DEEPFWFM, "
                                     "DCN_V2 and DLRM have)");
  }
}

int Ceil(double s) { return static_cast<int>(std::ceil(s - 1e-12)); }

// Input columns dropped when the `k` weakest groups (in `order`) go.
int DroppedWidth(const UmecLayer& layer, const std::vector<int>& order, int k) {
  int w = 0;
  for (int i = 0; i < k; ++i) w += layer.width[order[i]];
  return w;
}

}  // namespace

StatusOr<UmecNetwork> UmecNetwork::Describe(const worker::Model& model, bool input_only,
                                            const std::string& where) {
  const ModelOptions& o = model.options();
  ASSIGN_OR_RETURN(MainMlp main, MainMlpOf(o, where));
  if (!o.low_rank.empty())
    return Status::InvalidArgument(where + ": the model has low-rank layers (" + o.low_rank[0].layer +
                                   "); run UMEC before AFM in the plan");
  for (int d : o.emb_decode_dims)
    if (d > 0)
      return Status::InvalidArgument(where + ": the model has compressed embedding fields; run "
                                     "UMEC before AFM in the plan");
  if (input_only && !main.reads_fields)
    return Status::InvalidArgument(where + ".input_only: the MLP of " +
                                   std::string(worker::ModelTypeName(o.type)) +
                                   (o.type == ModelType::kDLRM ? " with the dot interaction" : "") +
                                   " does not read the fields (DEEPFM, DEEPFWFM and DLRM with "
                                   "dlrm_interaction: CAT do)");
  UmecNetwork net;
  std::vector<size_t> offsets;
  for (const LinearLayerShape& s : worker::LinearLayers(o)) {
    const double macs = static_cast<double>(s.in) * s.out;
    net.dense_macs_ += macs;
    if (s.layer.compare(0, main.prefix.size() + 1, main.prefix + ".") != 0) {
      net.fixed_macs_ += macs;
      continue;
    }
    net.rows_.push_back(s.out);
    net.cols_.push_back(s.in);
    size_t offset = SIZE_MAX;
    for (const worker::DenseParamInfo& p : model.DenseParams())
      if (p.name == s.layer + ".weight" && p.rows == s.out && p.cols == s.in) offset = p.offset;
    if (offset == SIZE_MAX)
      return Status::Internal(where + ": the model has no weight " + s.layer + ".weight");
    offsets.push_back(offset);
  }
  const int num = static_cast<int>(net.rows_.size());
  for (int l = 0; l < num; ++l) {
    UmecLayer layer;
    layer.layer = main.prefix + "." + std::to_string(l);
    layer.index = l;
    layer.weight_offset = offsets[l];
    layer.rows = net.rows_[l];
    layer.cols = net.cols_[l];
    if (l == 0) {
      if (!main.reads_fields) continue;
      int c = main.fixed_columns;
      for (int f = main.first_field; f < o.num_fields; ++f) {
        layer.begin.push_back(c);
        layer.width.push_back(o.FieldDim(f));
        layer.field.push_back(f);
        c += o.FieldDim(f);
      }
      if (c != layer.cols)
        return Status::Internal(where + ": " + layer.layer + " reads " + std::to_string(layer.cols) +
                                " columns, the fields make " + std::to_string(c));
    } else {
      if (input_only) break;
      for (int c = 0; c < layer.cols; ++c) {
        layer.begin.push_back(c);
        layer.width.push_back(1);
      }
    }
    if (layer.groups() >= 2) net.layers_.push_back(std::move(layer));
  }
  if (net.layers_.empty())
    return Status::InvalidArgument(where + ": the model's MLP has no layer with two groups or more");
  return net;
}

double UmecNetwork::Macs(const std::vector<int>& dropped_width) const {
  const int num = static_cast<int>(rows_.size());
  std::vector<int> din(num, 0);
  for (size_t i = 0; i < layers_.size(); ++i) din[layers_[i].index] = dropped_width[i];
  double macs = fixed_macs_;
  for (int l = 0; l < num; ++l) {
    const int out = rows_[l] - (l + 1 < num ? din[l + 1] : 0);
    macs += static_cast<double>(cols_[l] - din[l]) * out;
  }
  return macs;
}

double UmecNetwork::MinResource() const {
  std::vector<int> dw(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    dw[i] = layers_[i].cols - *std::max_element(layers_[i].width.begin(), layers_[i].width.end());
  return Resource(dw);
}

double UmecNetwork::ResourceSlope(const std::vector<int>& dropped_width, int i,
                                  int next_width) const {
  const int num = static_cast<int>(rows_.size());
  std::vector<int> din(num, 0);
  for (size_t j = 0; j < layers_.size(); ++j) din[layers_[j].index] = dropped_width[j];
  const int l = layers_[i].index;
  const int out = rows_[l] - (l + 1 < num ? din[l + 1] : 0);
  double d = -static_cast<double>(next_width) * out;
  if (l >= 1) d -= static_cast<double>(cols_[l - 1] - din[l - 1]);  // a neuron of layer l - 1
  return d / dense_macs_;
}

std::vector<double> GroupNorms(const UmecLayer& layer, const float* w) {
  std::vector<double> n(layer.groups(), 0.0);
  const float* base = w + layer.weight_offset;
  for (int g = 0; g < layer.groups(); ++g)
    for (int c = layer.begin[g]; c < layer.begin[g] + layer.width[g]; ++c) {
      const float* col = base + static_cast<size_t>(c) * layer.rows;
      double s = 0;
      for (int r = 0; r < layer.rows; ++r) s += static_cast<double>(col[r]) * col[r];
      n[g] += s;
    }
  return n;
}

std::vector<int> Weakest(const std::vector<double>& norms) {
  std::vector<int> order(norms.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return norms[a] < norms[b]; });
  return order;
}

std::string UmecState::Serialize() const {
  std::string out;
  auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  const uint32_t layers = static_cast<uint32_t>(s.size());
  put(&layers, 4);
  put(s.data(), 8 * s.size());
  put(y.data(), 8 * y.size());
  put(&z, 8);
  put(&updates, 8);
  return out;
}

Status UmecState::Parse(const std::string& bytes, size_t layers) {
  const size_t want = 4 + 16 * layers + 16;
  uint32_t n = 0;
  if (bytes.size() >= 4) std::memcpy(&n, bytes.data(), 4);
  if (bytes.size() != want || n != layers)
    return Status::Corruption("the UMEC state holds " + std::to_string(bytes.size()) +
                              " bytes for " + std::to_string(n) + " layers; this model has " +
                              std::to_string(layers) + " layers of groups (" +
                              std::to_string(want) + " bytes)");
  s.resize(layers);
  y.resize(layers);
  const char* p = bytes.data() + 4;
  std::memcpy(s.data(), p, 8 * layers);
  std::memcpy(y.data(), p + 8 * layers, 8 * layers);
  std::memcpy(&z, p + 16 * layers, 8);
  std::memcpy(&updates, p + 16 * layers + 8, 8);
  return Status::OK();
}

Status ValidateUmec(const UmecOptions& o, const UmecNetwork& net, const std::string& where) {
  if (o.fields_to_drop < 0) return Status::InvalidArgument(where + ".fields_to_drop: must be >= 0");
  if (o.fields_to_drop > 0) {
    if (o.selector == UmecSelector::kUniform)
      return Status::InvalidArgument(where + ".fields_to_drop: UNIFORM_THINNING keeps every field");
    const UmecLayer& first = net.layers().front();
    if (!first.fields())
      return Status::InvalidArgument(where + ".fields_to_drop: the model's MLP does not read the fields");
    if (o.fields_to_drop >= first.groups())
      return Status::InvalidArgument(where + ".fields_to_drop: " + std::to_string(o.fields_to_drop) +
                                     " of " + std::to_string(first.groups()) +
                                     " fields; at least one must stay");
  } else {
    if (!(o.budget > 0 && o.budget <= 1))
      return Status::InvalidArgument(where + ".budget: " + std::to_string(o.budget) +
                                     " is not in (0, 1] (a fraction of the dense MLP's "
                                     "multiply-adds)");
    double min = net.MinResource();
    if (o.selector == UmecSelector::kUniform) {
      std::vector<int> dw;
      bool neurons = false;
      for (const UmecLayer& L : net.layers()) {
        dw.push_back(L.fields() ? 0 : L.groups() - 1);
        neurons |= !L.fields();
      }
      if (!neurons)
        return Status::InvalidArgument(where + ": UNIFORM_THINNING thins the hidden layers; with "
                                       "input_only there are none to thin");
      min = net.Resource(dw);
    }
    if (o.budget < min)
      return Status::InvalidArgument(
          where + ".budget: " + std::to_string(o.budget) + " is unreachable: keeping one group in " +
          "every layer" + (o.input_only ? " (input selection alone)" : "") + " still costs " +
          std::to_string(min) + " of the dense MLP's multiply-adds");
  }
  if (!(o.lr > 0) || !(o.lr_s > 0) || !(o.lr_y >= 0) || !(o.lr_z >= 0))
    return Status::InvalidArgument(where + ": the learning rates lr, lr_s must be > 0 and lr_y, "
                                   "lr_z >= 0");
  if (o.start_step < 0) return Status::InvalidArgument(where + ".warmup_steps: must be >= 0");
  return Status::OK();
}

UmecSolver::UmecSolver(UmecOptions options, UmecNetwork network, worker::Model* model,
                       MetricsWriter* metrics)
    : o_(options), net_(std::move(network)), model_(model), metrics_(metrics) {
  const size_t n = net_.layers().size();
  state_.s.assign(n, 0.0);
  state_.y.assign(n, 0.0);
  budget_ = o_.budget;
  if (o_.fields_to_drop > 0) {
    // The resource with the fields_to_drop narrowest fields gone.
    const UmecLayer& first = net_.layers().front();
    std::vector<int> widths = first.width;
    std::sort(widths.begin(), widths.end());
    std::vector<int> dw(n, 0);
    dw[0] = std::accumulate(widths.begin(), widths.begin() + o_.fields_to_drop, 0);
    budget_ = net_.Resource(dw);
  }
}

void UmecSolver::Update(int64_t step) {
  float* w = model_->dense_values();
  const auto& layers = net_.layers();
  const size_t n = layers.size();
  std::vector<std::vector<double>> norms(n);
  std::vector<std::vector<int>> order(n);
  std::vector<int> dw(n);
  // 1. Proximal shrink of the ceil(s_l) weakest groups.
  for (size_t i = 0; i < n; ++i) {
    const UmecLayer& L = layers[i];
    norms[i] = GroupNorms(L, w);
    order[i] = Weakest(norms[i]);
    const int k = Ceil(state_.s[i]);
    const double factor = 1.0 + 2.0 * o_.lr * state_.y[i];
    if (factor != 1.0) {
      for (int j = 0; j < k; ++j) {
        const int g = order[i][j];
        float* col = w + L.weight_offset + static_cast<size_t>(L.begin[g]) * L.rows;
        const size_t len = static_cast<size_t>(L.width[g]) * L.rows;
        for (size_t e = 0; e < len; ++e) col[e] = static_cast<float>(col[e] / factor);
      }
      norms[i] = GroupNorms(L, w);  // the shrunk groups stay the weakest
      order[i] = Weakest(norms[i]);
    }
    dw[i] = DroppedWidth(L, order[i], k);
  }
  // 2. Gradient step on s (every layer's slope at the same point).
  std::vector<double> grad(n);
  for (size_t i = 0; i < n; ++i) {
    const int k = Ceil(state_.s[i]);
    const int next = order[i][std::min(k, layers[i].groups() - 1)];
    grad[i] = state_.y[i] * norms[i][next] +
              state_.z * net_.ResourceSlope(dw, static_cast<int>(i), layers[i].width[next]);
  }
  for (size_t i = 0; i < n; ++i) {
    const double g = std::clamp(grad[i], -1.0, 1.0);
    state_.s[i] = std::clamp(state_.s[i] - o_.lr_s * g, 0.0,
                             static_cast<double>(layers[i].groups() - 1));
  }
  // 3. Projected ascent on y and z at the new s.
  last_.step = step;
  last_.budget = budget_;
  last_.dropped.assign(n, 0);
  last_.least.assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const int k = Ceil(state_.s[i]);
    double least = 0;
    for (int j = 0; j < k; ++j) least += norms[i][order[i][j]];
    state_.y[i] = std::max(0.0, state_.y[i] + o_.lr_y * least);
    dw[i] = DroppedWidth(layers[i], order[i], k);
    last_.dropped[i] = k;
    last_.least[i] = least;
  }
  last_.resource = net_.Resource(dw);
  state_.z = std::max(0.0, state_.z + o_.lr_z * (last_.resource - budget_));
  ++state_.updates;
}

void UmecSolver::GroupLassoStep() {
  float* w = model_->dense_values();
  const double t = o_.lr * o_.group_lasso;
  for (const UmecLayer& L : net_.layers()) {
    const std::vector<double> norms = GroupNorms(L, w);
    for (int g = 0; g < L.groups(); ++g) {
      const double n = std::sqrt(norms[g]);
      const double factor = n > t ? 1.0 - t / n : 0.0;
      if (factor == 1.0) continue;
      float* col = w + L.weight_offset + static_cast<size_t>(L.begin[g]) * L.rows;
      const size_t len = static_cast<size_t>(L.width[g]) * L.rows;
      for (size_t e = 0; e < len; ++e) col[e] = static_cast<float>(col[e] * factor);
    }
  }
}

Status UmecSolver::AfterStep(int64_t step) {
  if (step <= o_.start_step) return Status::OK();
  if (o_.selector == UmecSelector::kGroupLasso) {
    GroupLassoStep();
    return Status::OK();
  }
  if (o_.selector != UmecSelector::kPrimalDual) return Status::OK();
  Update(step);
  if (o_.log_every_steps > 0 && state_.updates % o_.log_every_steps == 0) {
    std::string s, y, k;
    for (size_t i = 0; i < state_.s.size(); ++i) {
      s += (i ? "," : "") + fmt::format("{:.3f}", state_.s[i]);
      y += (i ? "," : "") + fmt::format("{:.4g}", state_.y[i]);
      k += (i ? "," : "") + std::to_string(last_.dropped[i]);
    }
    spdlog::info("umec step {}: resource {:.4f} (budget {:.4f}), dropped [{}], s [{}], y [{}], z {:.4g}",
                 step, last_.resource, budget_, k, s, y, state_.z);
    if (metrics_) {
      JsonLine line;
      line.Add("event", "umec").Add("step", step).Add("resource", last_.resource)
          .Add("budget", budget_).Add("z", state_.z);
      for (size_t i = 0; i < state_.s.size(); ++i) {
        const std::string& name = net_.layers()[i].layer;
        line.Add("s." + name, state_.s[i]).Add("y." + name, state_.y[i])
            .Add("dropped." + name, last_.dropped[i]).Add("least." + name, last_.least[i]);
      }
      metrics_->Write(line);
    }
  }
  return Status::OK();
}

UmecSelection UmecSolver::SelectUniform() const {
  const float* w = model_->dense_values();
  const auto& layers = net_.layers();
  const size_t n = layers.size();
  int widest = 0;
  for (const UmecLayer& L : layers)
    if (!L.fields()) widest = std::max(widest, L.groups());
  std::vector<std::vector<int>> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = Weakest(GroupNorms(layers[i], w));
  UmecSelection sel;
  sel.dropped.resize(n);
  std::vector<int> dw(n, 0);
  // The largest kept fraction j / widest within the budget.
  for (int j = widest; j >= 1; --j) {
    for (size_t i = 0; i < n; ++i) {
      const int g = layers[i].groups();
      dw[i] = layers[i].fields() ? 0 : g - std::max(1, static_cast<int>(static_cast<int64_t>(g) * j / widest));
    }
    sel.resource = net_.Resource(dw);
    if (sel.resource <= budget_ * (1 + 1e-12)) break;
  }
  for (size_t i = 0; i < n; ++i) {
    sel.dropped[i].assign(order[i].begin(), order[i].begin() + dw[i]);  // neurons: width 1
    std::sort(sel.dropped[i].begin(), sel.dropped[i].end());
  }
  return sel;
}

UmecSelection UmecSolver::Select() const {
  if (o_.selector == UmecSelector::kUniform) return SelectUniform();
  const float* w = model_->dense_values();
  const auto& layers = net_.layers();
  const size_t n = layers.size();
  UmecSelection sel;
  std::vector<std::vector<double>> norms(n);
  std::vector<std::vector<int>> order(n);
  std::vector<int> k(n), dw(n);
  for (size_t i = 0; i < n; ++i) {
    norms[i] = GroupNorms(layers[i], w);
    order[i] = Weakest(norms[i]);
    k[i] = o_.selector == UmecSelector::kPrimalDual ? Ceil(state_.s[i]) : 0;
    dw[i] = DroppedWidth(layers[i], order[i], k[i]);
  }
  double r = net_.Resource(dw);
  while (r > budget_ * (1 + 1e-12)) {
    int best = -1;
    double best_cost = 0, best_r = r;
    for (size_t i = 0; i < n; ++i) {
      if (k[i] >= layers[i].groups() - 1) continue;
      const int g = order[i][k[i]];
      std::vector<int> trial = dw;
      trial[i] += layers[i].width[g];
      const double after = net_.Resource(trial);
      if (!(after < r)) continue;
      const double cost = norms[i][g] / (r - after);
      if (best < 0 || cost < best_cost) {
        best = static_cast<int>(i);
        best_cost = cost;
        best_r = after;
      }
    }
    if (best < 0) break;  // unreachable (ValidateUmec refuses such budgets)
    dw[best] += layers[best].width[order[best][k[best]]];
    ++k[best];
    ++sel.forced;
    r = best_r;
  }
  sel.resource = r;
  sel.dropped.resize(n);
  for (size_t i = 0; i < n; ++i) {
    sel.dropped[i].assign(order[i].begin(), order[i].begin() + k[i]);
    std::sort(sel.dropped[i].begin(), sel.dropped[i].end());
  }
  return sel;
}

}  // namespace ctrps::compression
