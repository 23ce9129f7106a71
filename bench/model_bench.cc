// Training throughput of the CTR models: forward + backward + dense Adam per
// batch (the embedding pull/push is excluded; the gather/scatter into
// FieldRows is included), on 1 and 2 threads. Beside each model it times the
// MLP's GEMMs alone (the same shapes, in the same run) and prints the ratio
// of the model's MLP GFLOP/s to the bare GEMMs', i.e. how much of the GEMM
// speed the whole step keeps.
//
//   model_bench [--models=deepfm,deepfwfm|all] [--batch=2048] [--steps=30]
//               [--threads=1,2] [--fields=39] [--dim=16] [--mlp=400,400,400]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "common/keys.h"
#include "common/logging.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/loss.h"
#include "worker/nn/model.h"
#include "worker/nn/rng.h"
#include "worker/nn/threading.h"

namespace ctrps::worker {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<int> ParseInts(const std::string& s) {
  std::vector<int> v;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    v.push_back(std::stoi(s.substr(pos, end - pos)));
    pos = end + 1;
  }
  return v;
}

// Zipf(s) over ranks 1..n by inverse CDF.
class Zipf {
 public:
  Zipf(int n, double s) : cdf_(n) {
    double sum = 0;
    for (int i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(i + 1.0, s));
    for (double& c : cdf_) c /= sum;
  }
  int Sample(SplitMix64& rng) const {
    const double u = static_cast<double>(rng.Next() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<int>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

// A batch with Zipf-distributed keys per field (vocabularies from 100 to 1M,
// exponent 1.1), deduplicated as the trainer does, rows uniform in +-0.05.
SparseBatch MakeBatch(const Model& model, int batch, uint64_t seed) {
  const int F = model.options().num_fields;
  SparseBatch sb;
  sb.batch_size = batch;
  sb.fields.resize(F);
  sb.values.setOnes(F, batch);
  SplitMix64 rng(seed);
  const int vocab_sizes[] = {100, 1000, 10000, 100000, 1000000};
  for (int f = 0; f < F; ++f) {
    const Zipf zipf(vocab_sizes[f % 5], 1.1);
    FieldRows& fr = sb.fields[f];
    std::unordered_map<Key, int32_t> ids;
    fr.index.resize(batch);
    for (int b = 0; b < batch; ++b) {
      const Key k = MakeKey(f, Mix64(zipf.Sample(rng)));
      auto it = ids.emplace(k, static_cast<int32_t>(fr.unique_keys.size())).first;
      if (it->second == static_cast<int32_t>(fr.unique_keys.size())) fr.unique_keys.push_back(k);
      fr.index[b] = it->second;
    }
    const int W = model.RowWidth(f);
    fr.rows.resize(W, static_cast<Eigen::Index>(fr.unique_keys.size()));
    for (Eigen::Index i = 0; i < fr.rows.size(); ++i)
      fr.rows.data()[i] = rng.Uniform(-0.05f, 0.05f);
  }
  // DLRM's dense fields: log-scaled counts.
  for (int f = 0; f < model.options().num_dense_fields; ++f)
    for (int b = 0; b < batch; ++b)
      sb.values(f, b) = std::log1p(static_cast<float>(rng.Next() % 100));
  return sb;
}

// The dense layers' GEMMs of one training step, alone: per layer (in, out),
// W X, dY X^T and W^T dY (the first layer's too: the embeddings need it).
class LayerGemms {
 public:
  LayerGemms(const std::vector<std::pair<int, int>>& layers, int batch) {
    for (const auto& [in, out] : layers) {
      w_.push_back(MatrixF::Random(out, in));
      dw_.push_back(MatrixF::Zero(out, in));
      x_.push_back(MatrixF::Random(in, batch));
      y_.push_back(MatrixF::Random(out, batch));
      dx_.push_back(MatrixF::Random(in, batch));
    }
  }
  void Step() {
    for (size_t l = 0; l < w_.size(); ++l) y_[l].noalias() = w_[l] * x_[l];
    for (size_t l = w_.size(); l-- > 0;) {
      dw_[l].noalias() += y_[l] * x_[l].transpose();
      dx_[l].noalias() = w_[l].transpose() * y_[l];
    }
  }

 private:
  std::vector<MatrixF> w_, dw_, x_, y_, dx_;
};

// (in, out) of every dense layer that is a GEMM: "*.weight" (out x in), and
// the low-rank cross factors "*.v" (D x r: D -> r) and "*.u" (D x r: r -> D).
std::vector<std::pair<int, int>> GemmLayers(const Model& model) {
  std::vector<std::pair<int, int>> layers;
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const DenseParamInfo& p : model.DenseParams()) {
    if (ends_with(p.name, ".weight")) layers.emplace_back(p.cols, p.rows);
    if (ends_with(p.name, ".v")) layers.emplace_back(p.rows, p.cols);
    if (ends_with(p.name, ".u")) layers.emplace_back(p.cols, p.rows);
  }
  return layers;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct StepTimes {
  double total = 0, forward = 0, backward = 0, optimizer = 0;
  double gemm = 0;  // the dense layers' GEMMs alone, 0 if none
};

// Alternates a model training step and (if gemms) one step of its dense
// layers' bare GEMMs, so both see the same machine state; medians over `steps`.
StepTimes TimeModel(Model* model, DenseOptimizer* opt, SparseBatch* batch, LayerGemms* gemms,
                    int steps) {
  VectorF logits, dlogits;
  VectorF labels(batch->batch_size);
  for (int b = 0; b < batch->batch_size; ++b) labels[b] = (Mix64(b) % 4 == 0) ? 1.0f : 0.0f;
  std::vector<double> total, fwd, bwd, adam, gemm;
  for (int s = -3; s < steps; ++s) {  // 3 warm-up steps
    const auto t0 = Clock::now();
    model->Forward(*batch, /*training=*/true, &logits);
    SigmoidCrossEntropyWithLogits(logits, labels, &dlogits);
    const auto t1 = Clock::now();
    std::fill_n(model->dense_grads(), model->dense_size(), 0.0f);
    model->Backward(dlogits, batch);
    const auto t2 = Clock::now();
    opt->Step(model->dense_values(), model->dense_grads());
    const auto t3 = Clock::now();
    if (gemms != nullptr) gemms->Step();
    const auto t4 = Clock::now();
    if (s < 0) continue;
    total.push_back(Seconds(t0, t3));
    fwd.push_back(Seconds(t0, t1));
    bwd.push_back(Seconds(t1, t2));
    adam.push_back(Seconds(t2, t3));
    gemm.push_back(Seconds(t3, t4));
  }
  // Medians resist the noise of a shared machine.
  return {Median(total), Median(fwd), Median(bwd), Median(adam), gemms ? Median(gemm) : 0.0};
}

struct BenchModel {
  std::string key;
  ModelType type;
};

}  // namespace
}  // namespace ctrps::worker

int main(int argc, char** argv) {
  ctrps::InitLogging("info");  // log lines to stderr, the tables to stdout
  using namespace ctrps::worker;
  std::string models = "deepfm,deepfwfm";
  int batch = 2048, steps = 30, fields = 39, dim = 16;
  std::vector<int> threads = {1, 2}, mlp = {400, 400, 400};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = val("--models=")) models = v;
    else if (const char* v = val("--batch=")) batch = std::atoi(v);
    else if (const char* v = val("--steps=")) steps = std::atoi(v);
    else if (const char* v = val("--fields=")) fields = std::atoi(v);
    else if (const char* v = val("--dim=")) dim = std::atoi(v);
    else if (const char* v = val("--threads=")) threads = ParseInts(v);
    else if (const char* v = val("--mlp=")) mlp = ParseInts(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const std::vector<BenchModel> all = {
      {"lr", ModelType::kLR},          {"fm", ModelType::kFM},
      {"fwfm", ModelType::kFwFM},      {"deepfm", ModelType::kDeepFM},
      {"deepfwfm", ModelType::kDeepFwFM}, {"dcnv2", ModelType::kDCNv2},
      {"dlrm", ModelType::kDLRM}};
  if (models == "all") models = "lr,fm,fwfm,deepfm,deepfwfm,dcnv2,dlrm";

  std::printf("model_bench: %d fields x dim %d, MLP ", fields, dim);
  for (size_t i = 0; i < mlp.size(); ++i) std::printf("%s%d", i ? "-" : "", mlp[i]);
  std::printf(", batch %d; forward+backward+Adam per batch, median of %d steps\n"
              "(each model step alternates with one step of its MLP's bare GEMMs)\n\n",
              batch, steps);
  std::printf("%-9s %3s %10s %8s %8s %8s %8s %9s %9s %6s\n", "model", "thr", "samples/s",
              "step ms", "fwd ms", "bwd ms", "adam ms", "MLP GF/s", "GEMM GF/s", "ratio");

  for (const BenchModel& bm : all) {
    if (("," + models + ",").find("," + bm.key + ",") == std::string::npos) continue;
    ModelOptions o;
    o.type = bm.type;
    o.num_fields = fields;
    o.emb_dims.assign(fields, bm.type == ModelType::kLR ? 0 : dim);
    o.mlp_dims = mlp;
    o.num_dense_fields = bm.type == ModelType::kDLRM ? std::min(13, fields - 1) : 0;
    o.bottom_mlp_dims = {512, 256, dim};
    auto model_or = NewModel(o);
    if (!model_or.ok()) {
      std::fprintf(stderr, "%s\n", model_or.status().ToString().c_str());
      return 1;
    }
    auto& model = *model_or;
    auto opt_or = NewDenseOptimizer(DenseOptimizerOptions{}, model->dense_size());
    auto& opt = *opt_or;
    SparseBatch sb = MakeBatch(*model, batch, 42);

    const std::vector<std::pair<int, int>> layers = GemmLayers(*model);
    double layer_flops = 0;  // per step: forward, dW and dX of every layer
    for (const auto& [in, out] : layers) layer_flops += 3.0 * 2.0 * in * out * batch;
    const bool has_layers = !layers.empty();

    for (int t : threads) {
      SetNumThreads(t);
      std::unique_ptr<LayerGemms> gemms;
      if (has_layers) gemms = std::make_unique<LayerGemms>(layers, batch);
      const StepTimes st = TimeModel(model.get(), opt.get(), &sb, gemms.get(), steps);
      std::printf("%-9s %3d %10.0f %8.2f %8.2f %8.2f %8.2f", ModelTypeName(bm.type), t,
                  batch / st.total, st.total * 1e3, st.forward * 1e3, st.backward * 1e3,
                  st.optimizer * 1e3);
      if (has_layers) {
        const double model_gf = layer_flops / st.total / 1e9, gemm_gf = layer_flops / st.gemm / 1e9;
        std::printf(" %9.1f %9.1f %6.2f\n", model_gf, gemm_gf, model_gf / gemm_gf);
      } else {
        std::printf(" %9s %9s %6s\n", "-", "-", "-");
      }
      std::fflush(stdout);
    }
  }
  std::printf(
      "\nMLP GF/s: the training FLOPs (3 x forward) of the model's dense layers (its MLPs, and\n"
      "DCN-v2's cross matrices) per step over the whole step time; GEMM GF/s: the same GEMMs\n"
      "alone; ratio = MLP / GEMM (1.0 = no time outside the GEMMs).\n");
  return 0;
}
