// DeepLight: the schedule, exact thresholds against a sort of all values,
// the global embedding threshold through a client, the pruner's steps and
// masks, and bad settings.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "compression/deeplight.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/nn/model.h"

namespace ctrps::compression {
namespace {

std::vector<float> RandomValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(DeepLightTest, ScheduleIsThePapers) {
  EXPECT_EQ(ScheduledSparsity(0.9, 0), 0.0);
  EXPECT_NEAR(ScheduledSparsity(0.9, 100), 0.9 * 0.01, 1e-12);
  EXPECT_NEAR(ScheduledSparsity(0.9, 1000), 0.9 * (1 - std::pow(0.99, 10)), 1e-12);
  EXPECT_NEAR(ScheduledSparsity(0.9, 50, 5), 0.9 * (1 - std::pow(0.99, 10)), 1e-12);
  EXPECT_NEAR(ScheduledSparsity(0.9, 115, 0.25), 0.9 * (1 - std::pow(0.99, 460)), 1e-12);
  EXPECT_GT(ScheduledSparsity(0.9, 115, 0.25), 0.99 * 0.9);
  EXPECT_LT(ScheduledSparsity(0.9, 10000), 0.9);
  EXPECT_LE(ScheduledSparsity(0.9, 1000000), 0.9);
  EXPECT_EQ(CountToPrune(0.5, 11), 5u);
  EXPECT_EQ(CountToPrune(0, 11), 0u);
  EXPECT_EQ(CountToPrune(2, 11), 11u);
}

TEST(DeepLightTest, PruneSmallestMatchesASortOfAllValues) {
  for (double fraction : {0.0, 0.1, 0.37, 0.9, 0.999}) {
    std::vector<float> w = RandomValues(1001, 3);
    std::vector<float> sorted = w;
    std::sort(sorted.begin(), sorted.end(),
              [](float a, float b) { return std::fabs(a) < std::fabs(b); });
    const uint64_t k = CountToPrune(fraction, w.size());
    const uint64_t zeros = PruneSmallest(w.data(), w.size(), fraction);
    EXPECT_EQ(zeros, k) << fraction;  // no ties among random floats
    for (size_t i = 0; i < sorted.size(); ++i) {
      const bool pruned = i < k;
      const bool is_zero =
          std::find(w.begin(), w.end(), sorted[i]) == w.end();  // its value is gone
      EXPECT_EQ(is_zero, pruned) << "fraction " << fraction << " rank " << i;
    }
  }
  // Ties at the threshold are all pruned; zeros count among the smallest.
  std::vector<float> t = {0, 0, 1, -1, 1, 2, 3};
  EXPECT_EQ(PruneSmallest(t.data(), t.size(), 3.0 / 7), 5u);
  EXPECT_EQ(t, (std::vector<float>{0, 0, 0, 0, 0, 2, 3}));
}

TEST(DeepLightTest, PrunePairsIsSymmetric) {
  const int F = 6;
  std::vector<float> r = RandomValues(F * F, 5);
  std::vector<std::pair<float, std::pair<int, int>>> pairs;
  for (int j = 0; j < F; ++j)
    for (int i = 0; i < j; ++i)
      pairs.push_back({std::fabs(0.5f * (r[j * F + i] + r[i * F + j])), {i, j}});
  std::sort(pairs.begin(), pairs.end());
  const std::vector<float> before = r;
  EXPECT_EQ(PrunePairs(r.data(), F, 0.4), CountToPrune(0.4, pairs.size()));
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto [i, j] = pairs[p].second;
    const bool pruned = p < CountToPrune(0.4, pairs.size());
    EXPECT_EQ(r[j * F + i] == 0 && r[i * F + j] == 0, pruned);
    if (!pruned) {
      EXPECT_EQ(r[j * F + i], before[j * F + i]);
    }
  }
  for (int i = 0; i < F; ++i) EXPECT_EQ(r[i * F + i], before[i * F + i]);  // diagonal untouched
}

// A local client over tables of random rows (a linear weight and d entries).
struct Tables {
  std::unique_ptr<storage::EmbeddingStore> store = storage::NewMemoryStore();
  std::unique_ptr<ps::EmbeddingClient> client = ps::NewLocalClient(store.get(), 8);
  std::vector<float> entries;  // every second-order entry
  Tables(int tables, int rows, int dim) {
    std::vector<ps::TableConfig> tc(tables);
    for (int t = 0; t < tables; ++t) {
      tc[t].table_id = t;
      tc[t].dim = dim + 1;
    }
    EXPECT_TRUE(client->DeclareTables(tc).ok());
    for (int t = 0; t < tables; ++t) {
      std::vector<Key> keys;
      std::vector<float> values = RandomValues(static_cast<size_t>(rows) * (dim + 1), 7 + t);
      for (int i = 0; i < rows; ++i) keys.push_back(MakeKey(t, i * 3 + 1));
      for (int i = 0; i < rows; ++i)
        for (int c = 1; c <= dim; ++c) entries.push_back(values[i * (dim + 1) + c]);
      EXPECT_TRUE(client->LoadRows(t, keys.data(), keys.size(), values.data()).ok());
    }
  }
};

TEST(DeepLightTest, GlobalThresholdIsTheKthSmallestOfAllShards) {
  Tables t(3, 500, 4);
  ps::EntrySet set{{0, 1, 2}, {1, 1, 1}};
  std::vector<uint32_t> bits;
  for (float v : t.entries) bits.push_back(ps::MagnitudeBits(v));
  std::sort(bits.begin(), bits.end());
  for (double fraction : {0.001, 0.25, 0.4, 0.75}) {
    uint32_t got = 0;
    uint64_t total = 0;
    auto any = GlobalThreshold(t.client.get(), set, fraction, &got, &total);
    ASSERT_TRUE(any.ok()) << any.status().ToString();
    ASSERT_TRUE(*any);
    EXPECT_EQ(total, t.entries.size());
    EXPECT_EQ(got, bits[CountToPrune(fraction, total) - 1]) << fraction;
  }
  uint32_t unused;
  uint64_t total;
  EXPECT_FALSE(*GlobalThreshold(t.client.get(), set, 0.0, &unused, &total));
}

worker::ModelOptions DeepFwFm() {
  worker::ModelOptions o;
  o.type = worker::ModelType::kDeepFwFM;
  o.num_fields = 3;
  o.emb_dims = {4, 4, 4};
  o.mlp_dims = {16, 8};
  o.seed = 3;
  return o;
}

TEST(DeepLightTest, PrunerPrunesOnScheduleAndMasksPersist) {
  Tables t(3, 300, 4);
  auto model = worker::NewModel(DeepFwFm());
  ASSERT_TRUE(model.ok());
  DeepLightOptions o;
  o.mlp_sparsity = 0.8;
  o.every_steps = 10;
  o.damping_steps = 5;
  o.persistent_masks = true;
  DeepLightPruner pruner(o, model->get(), t.client.get(), nullptr, true, ::testing::TempDir() + "/dl", nullptr);
  ASSERT_TRUE(pruner.AfterStep(5).ok());
  EXPECT_EQ(pruner.last().step, 0);  // not a pruning step
  ASSERT_TRUE(pruner.AfterStep(20).ok());
  const SparsityReport r = pruner.last();
  EXPECT_EQ(r.step, 20);
  const double s = ScheduledSparsity(0.8, 20, 5);
  EXPECT_NEAR(r.target, s, 1e-12);
  // MLP: hidden layers 12 -> 16 -> 8 (the output layer kept), each pruned alone.
  EXPECT_EQ(r.mlp_weights, 12u * 16 + 16 * 8);
  EXPECT_EQ(r.mlp_weights - r.mlp_nonzero, CountToPrune(s, 12 * 16) + CountToPrune(s, 16 * 8));
  EXPECT_EQ(r.pairs, 3u);
  EXPECT_EQ(r.pairs - r.pairs_nonzero, CountToPrune(s, 3));
  EXPECT_EQ(r.embedding_entries, t.entries.size());
  EXPECT_EQ(r.embedding_zeroed, CountToPrune(s * o.embedding_ratio, t.entries.size()));
  EXPECT_EQ(r.embedding_zero, r.embedding_zeroed);  // no zeros before, no ties
  // Persistent masks: a dense update that moves every weight leaves pruned ones at 0.
  worker::Model& m = **model;
  std::vector<float> zero_at;
  for (size_t i = 0; i < m.dense_size(); ++i) zero_at.push_back(m.dense_values()[i] == 0.0f);
  for (size_t i = 0; i < m.dense_size(); ++i) m.dense_values()[i] += 0.5f;
  ASSERT_TRUE(pruner.AfterStep(21).ok());
  size_t masked = 0;
  for (const worker::DenseParamInfo& p : m.DenseParams()) {
    if (p.name.find("weight") == std::string::npos || p.name == "mlp.2.weight") continue;
    for (int i = 0; i < p.rows * p.cols; ++i)
      if (zero_at[p.offset + i]) {
        EXPECT_EQ(m.dense_values()[p.offset + i], 0.0f) << p.name;
        ++masked;
      }
  }
  EXPECT_GT(masked, 0u);
  // The batch gradients of pruned embedding entries are zeroed before the push.
  worker::SparseBatch b;
  b.fields.resize(3);
  for (auto& fr : b.fields) {
    fr.rows = worker::MatrixF::Ones(5, 2);
    fr.rows(2, 1) = 0.0f;
    fr.grads = worker::MatrixF::Ones(5, 2);
  }
  pruner.BeforePush(&b);
  EXPECT_EQ(b.fields[1].grads(2, 1), 0.0f);
  EXPECT_EQ(b.fields[1].grads(3, 1), 1.0f);
}

TEST(DeepLightTest, BadSettingsAreRefusedNamingThem) {
  auto fails_with = [](DeepLightOptions o, worker::ModelOptions m, const std::string& text) {
    Status s = ValidateDeepLight(o, m, "compression.stages[0].deeplight");
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
  };
  DeepLightOptions o;
  EXPECT_TRUE(ValidateDeepLight(o, DeepFwFm(), "x").ok());
  o.mlp_sparsity = 1.2;
  fails_with(o, DeepFwFm(), "deeplight.mlp_sparsity: 1.2");
  o = {};
  o.embedding_ratio = 2;
  fails_with(o, DeepFwFm(), "embedding_ratio");
  o = {};
  o.every_steps = 0;
  fails_with(o, DeepFwFm(), "every_steps");
  o = {};
  o.damping_steps = 0;
  fails_with(o, DeepFwFm(), "damping_steps: 0");
  o.damping_steps = -3;
  fails_with(o, DeepFwFm(), "damping_steps");
  o.damping_steps = 0.25;  // a short run: S_t at 99% of the target by step 115
  EXPECT_TRUE(ValidateDeepLight(o, DeepFwFm(), "x").ok());
  worker::ModelOptions deepfm = DeepFwFm();
  deepfm.type = worker::ModelType::kDeepFM;
  fails_with(DeepLightOptions{}, deepfm, "DeepFM has no field-pair matrix R to prune");
  worker::ModelOptions fm = DeepFwFm();
  fm.type = worker::ModelType::kFM;
  DeepLightOptions no_r;
  no_r.pair_ratio = 0;
  fails_with(no_r, fm, "FM has no MLP to prune");
}

}  // namespace
}  // namespace ctrps::compression
