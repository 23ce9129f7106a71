// AFM: closed forms (full rank reproduces the model; the rank-k error is the
// sum of the dropped eigenvalues), the weight-SVD baseline, and bad plans.
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "compression/afm.h"
#include "compression/pca.h"
#include "worker/nn/model.h"

namespace ctrps::compression {
namespace {

using worker::MatrixF;
using worker::Model;
using worker::ModelOptions;
using worker::SparseBatch;
using worker::VectorF;

constexpr int kFields = 4, kKeys = 12;

ModelOptions DeepFm() {
  ModelOptions o;
  o.type = worker::ModelType::kDeepFM;
  o.num_fields = kFields;
  o.emb_dims.assign(kFields, 6);
  o.mlp_dims = {8, 8};
  o.seed = 5;
  return o;
}

// A table of kKeys rows per field (linear weight + embedding), and batches
// drawing keys from it with skewed frequencies.
struct Data {
  std::map<Key, std::vector<float>> rows;
  std::vector<SparseBatch> batches;
};

Data MakeData(const Model& model, int batches, int batch_size, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 0.5f);
  Data d;
  const int F = model.options().num_fields;
  for (int f = 0; f < F; ++f)
    for (int k = 0; k < kKeys; ++k) {
      std::vector<float> r(model.RowWidth(f));
      for (size_t i = 0; i < r.size(); ++i) r[i] = normal(rng) + (i == 1 ? 0.7f : 0.0f);
      d.rows[MakeKey(f, k)] = r;
    }
  for (int n = 0; n < batches; ++n) {
    SparseBatch sb;
    sb.batch_size = batch_size;
    sb.fields.resize(F);
    sb.values = MatrixF::Ones(F, batch_size);
    for (int f = 0; f < F; ++f) {
      worker::FieldRows& fr = sb.fields[f];
      for (int k = 0; k < kKeys; ++k) fr.unique_keys.push_back(MakeKey(f, k));
      for (int b = 0; b < batch_size; ++b) {
        const int k = static_cast<int>(rng() % kKeys);
        fr.index.push_back(std::min(k, static_cast<int>(rng() % kKeys)));  // skewed to low keys
      }
      fr.rows.resize(model.RowWidth(f), kKeys);
      for (int k = 0; k < kKeys; ++k)
        for (int i = 0; i < model.RowWidth(f); ++i) fr.rows(i, k) = d.rows[MakeKey(f, k)][i];
    }
    d.batches.push_back(std::move(sb));
  }
  return d;
}

std::unique_ptr<AfmStatistics> Collect(const AfmPlan& plan, Model* model, Data& data) {
  auto stats = AfmStatistics::Start(plan, model);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  VectorF logits;
  for (SparseBatch& b : data.batches) {
    model->Forward(b, false, &logits);
    EXPECT_TRUE((*stats)->Observe(b, b.batch_size).ok());
  }
  return std::move(*stats);
}

// The batch with every compressed field's rows rewritten as the servers would.
SparseBatch Rewritten(const SparseBatch& in, const AfmOutcome& out) {
  SparseBatch b = in;
  for (const auto& tc : out.tables) {
    worker::FieldRows& fr = b.fields[tc.field];
    MatrixF rows(tc.change.keep_prefix + tc.change.out_dim, fr.rows.cols());
    for (int u = 0; u < fr.rows.cols(); ++u) tc.change.Apply(&fr.rows(0, u), &rows(0, u));
    fr.rows = rows;
  }
  return b;
}

std::unique_ptr<Model> Trained() {
  auto m = worker::NewModel(DeepFm());
  EXPECT_TRUE(m.ok());
  // Biases away from zero so the ReLUs see both signs.
  for (const auto& p : (*m)->DenseParams())
    if (p.name.find(".bias") != std::string::npos)
      for (int r = 0; r < p.rows; ++r) (*m)->dense_values()[p.offset + r] = 0.1f * (r % 3) - 0.1f;
  return std::move(*m);
}

TEST(AfmTest, FullRankReproducesTheModel) {
  for (auto basis : {AfmPlan::Basis::kOutputFeatures, AfmPlan::Basis::kWeightSvd}) {
    auto model = Trained();
    Data data = MakeData(*model, 4, 32, 1);
    AfmPlan plan;
    plan.basis = basis;
    plan.layers = {{"mlp.0", {8, 0, false}}, {"mlp.1", {8, 0, false}}};
    plan.embeddings.rank = 6;
    ASSERT_TRUE(ValidateAfmPlan(plan, model->options(), "afm").ok());
    std::unique_ptr<AfmStatistics> stats;
    std::vector<Eigen::MatrixXd> grams(kFields);
    if (basis == AfmPlan::Basis::kOutputFeatures) {
      stats = Collect(plan, model.get(), data);
    } else {
      for (int f = 0; f < kFields; ++f) {
        grams[f] = Eigen::MatrixXd::Zero(6, 6);
        for (int k = 0; k < kKeys; ++k) {
          const auto& r = data.rows[MakeKey(f, k)];
          Eigen::Map<const VectorF> e(r.data() + 1, 6);
          grams[f] += e.cast<double>() * e.cast<double>().transpose();
        }
      }
    }
    auto out = BuildAfm(plan, *model, stats.get(), grams);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->tables.size(), static_cast<size_t>(kFields));
    EXPECT_EQ(out->model->RowWidth(0), 7);
    for (const SparseBatch& b : data.batches) {
      VectorF before, after;
      model->Forward(b, false, &before);
      SparseBatch nb = Rewritten(b, *out);
      out->model->Forward(nb, false, &after);
      EXPECT_LT((before - after).cwiseAbs().maxCoeff(), 2e-4) << "basis " << static_cast<int>(basis);
    }
  }
}

TEST(AfmTest, RankKErrorIsTheSumOfTheDroppedEigenvalues) {
  auto model = Trained();
  Data data = MakeData(*model, 6, 40, 2);
  // The layer alone, so its input is the same in both models.
  AfmPlan plan;
  plan.layers = {{"mlp.1", {3, 0, false}}};
  auto stats = Collect(plan, model.get(), data);
  auto out = BuildAfm(plan, *model, stats.get(), {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->report.size(), 1u);
  // Layer: y of the original against y' = B (A x + b_A) + b_B of the new one.
  MatrixF y, y2;
  ASSERT_TRUE(model->SetLayerTaps({{"mlp.1", &y}}).ok());
  ASSERT_TRUE(out->model->SetLayerTaps({{"mlp.1.b", &y2}}).ok());
  double sq = 0, n = 0;
  for (const SparseBatch& b : data.batches) {
    VectorF l;
    model->Forward(b, false, &l);
    out->model->Forward(Rewritten(b, *out), false, &l);
    sq += (y - y2).cast<double>().squaredNorm();
    n += b.batch_size;
  }
  const double dropped = out->report[0].dropped;
  EXPECT_GT(dropped, 0);
  EXPECT_NEAR(sq / n, dropped, 1e-4 * (1 + dropped));
  // Field 2: e against its decoding U c + mu, weighted by lookups.
  AfmPlan field_plan;
  field_plan.fields = {{2, {2, 0, false}}};
  ASSERT_TRUE(model->SetLayerTaps({}).ok());
  auto field_stats = Collect(field_plan, model.get(), data);
  out = BuildAfm(field_plan, *model, field_stats.get(), {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->tables.size(), 1u);
  const auto& tc = out->tables[0];
  ASSERT_EQ(tc.field, 2);
  Eigen::Map<const Eigen::MatrixXd> u(tc.change.basis.data(), 6, 2);
  Eigen::Map<const Eigen::VectorXd> mu(tc.change.mean.data(), 6);
  sq = 0;
  n = 0;
  for (const SparseBatch& b : data.batches)
    for (int i : b.fields[2].index) {
      const auto& r = data.rows[MakeKey(2, i)];
      const Eigen::VectorXd e = Eigen::Map<const VectorF>(r.data() + 1, 6).cast<double>();
      float c[3];
      tc.change.Apply(r.data(), c);
      const Eigen::VectorXd code = Eigen::Map<const VectorF>(c + 1, 2).cast<double>();
      sq += (e - (u * code + mu)).squaredNorm();
      n += 1;
    }
  EXPECT_GT(out->report[0].dropped, 0);
  EXPECT_NEAR(sq / n, out->report[0].dropped, 1e-5 * (1 + out->report[0].dropped));
}

TEST(AfmTest, VarianceChoosesTheSmallestRank) {
  auto model = Trained();
  Data data = MakeData(*model, 4, 32, 3);
  AfmPlan plan;
  plan.layers = {{"mlp.0", {0, 0.9, true}}};
  auto stats = Collect(plan, model.get(), data);
  auto out = BuildAfm(plan, *model, stats.get(), {});
  ASSERT_TRUE(out.ok());
  const Eigensystem e = SymmetricEigen(stats->layer(0).Covariance());
  const int k = out->report[0].rank;
  EXPECT_GE(KeptFraction(e.values, k), 0.9);
  if (k > 1) {
    EXPECT_LT(KeptFraction(e.values, k - 1), 0.9);
  }
  ASSERT_EQ(out->options.low_rank.size(), 1u);
  EXPECT_TRUE(out->options.low_rank[0].relu);
}

TEST(AfmTest, BadPlansAreRefusedNamingTheSetting) {
  const ModelOptions o = DeepFm();
  auto fails_with = [&](const AfmPlan& p, const ModelOptions& m, const std::string& text) {
    Status s = ValidateAfmPlan(p, m, "compression.stages[0].afm");
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
  };
  AfmPlan p;
  fails_with(p, o, "nothing to compress");
  p.layers = {{"mlp.1", {9, 0, false}}};
  fails_with(p, o, "layers[0]: rank 9 is larger than the layer's output width (8)");
  p.layers = {{"mlp.7", {2, 0, false}}};
  fails_with(p, o, "has no layer 'mlp.7'; its layers are: mlp.0, mlp.1, mlp.2");
  p.layers = {{"mlp.1", {2, 0.5, false}}};
  fails_with(p, o, "not both");
  p.layers = {{"mlp.1", {0, 1.5, false}}};
  fails_with(p, o, "variance");
  p.layers.clear();
  p.embeddings.rank = 7;
  fails_with(p, o, "embeddings: rank 7 is larger than the embedding dim (6)");
  ModelOptions lr = o;
  lr.type = worker::ModelType::kLR;
  lr.emb_dims.clear();
  p.embeddings.rank = 2;
  fails_with(p, lr, "LR has no embedding");
  p.embeddings = {};
  p.fields = {{9, {2, 0, false}}};
  fails_with(p, o, "fields[0]: field 9 out of range");
  ModelOptions done = o;
  done.emb_dims = {2, 6, 6, 6};
  done.emb_decode_dims = {6, 0, 0, 0};
  p.fields = {{0, {1, 0, false}}};
  fails_with(p, done, "already compressed");
  ModelOptions lowrank = o;
  lowrank.low_rank = {{"mlp.1", 2, false}};
  p.fields.clear();
  p.layers = {{"mlp.1", {1, 0, false}}};
  fails_with(p, lowrank, "already low-rank");
}

}  // namespace
}  // namespace ctrps::compression
