#include "worker/synth/planted_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "tests/worker/synth/synth_test_util.h"

namespace ctrps::worker::synth {
namespace {

using testing::SmallOptions;

SynthOptions Options(DataFormat format, uint64_t seed = 1) {
  SynthOptions o = SmallOptions(format, "/unused", 1000);
  o.seed = seed;
  return o;
}

std::vector<SynthRow> Sample(const PlantedModel& model, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<SynthRow> rows(n);
  for (int i = 0; i < n; ++i) {
    model.SampleRow(rng, &rows[i]);
    rows[i].hour_of_day = i % 24;
  }
  return rows;
}

TEST(PlantedModelTest, BaseCtrIsCalibrated) {
  for (DataFormat format : {DataFormat::kCriteo, DataFormat::kAvazu}) {
    for (uint64_t seed : {1, 2, 3}) {
      PlantedModel model = PlantedModel::Create(Options(format, seed));
      Rng rng(seed + 100);
      double sum_p = 0, clicks = 0;
      const int n = 50000;
      for (const SynthRow& row : Sample(model, n, seed + 7)) {
        const double p = model.Probability(row);
        sum_p += p;
        clicks += rng.Uniform() < p;
      }
      EXPECT_NEAR(sum_p / n, 0.22, 0.01) << FormatName(format) << " seed " << seed;
      EXPECT_GT(clicks / n, 0.20);
      EXPECT_LT(clicks / n, 0.25);
    }
  }
}

TEST(PlantedModelTest, SameSeedSameModelOtherSeedOther) {
  PlantedModel a = PlantedModel::Create(Options(DataFormat::kCriteo, 5));
  PlantedModel b = PlantedModel::Create(Options(DataFormat::kCriteo, 5));
  PlantedModel c = PlantedModel::Create(Options(DataFormat::kCriteo, 6));
  EXPECT_EQ(a.bias(), b.bias());
  std::vector<SynthRow> rows = Sample(a, 100, 1);
  int differ = 0;
  for (const SynthRow& row : rows) {
    EXPECT_EQ(a.Logit(row), b.Logit(row));
    differ += a.Logit(row) != c.Logit(row);
  }
  EXPECT_GT(differ, 95);
}

TEST(PlantedModelTest, NoiseFieldsAreNeverRead) {
  SynthOptions o = Options(DataFormat::kCriteo);
  PlantedModel model = PlantedModel::Create(o);
  const DatasetSpec& spec = GetDatasetSpec(o.format);
  std::vector<int> noise;
  for (const std::string& name : spec.default_noise_fields) noise.push_back(FindField(spec, name));
  ASSERT_EQ(noise.size(), 4u);
  for (int f : noise) {
    EXPECT_TRUE(model.fields()[f].noise);
    EXPECT_EQ(model.fields()[f].importance, 0.0);
    for (int64_t id = 0; id < 50; ++id) EXPECT_EQ(model.FirstOrderWeight(f, id), 0.0);
  }
  for (const InteractionPair& p : model.pairs()) {
    EXPECT_FALSE(model.fields()[p.a].noise);
    EXPECT_FALSE(model.fields()[p.b].noise);
  }
  for (int f : model.mlp_fields()) EXPECT_FALSE(model.fields()[f].noise);
  // Rewriting only the noise columns of a row never moves its logit;
  // rewriting a signal column usually does.
  Rng rng(4);
  int moved = 0;
  for (SynthRow row : Sample(model, 200, 3)) {
    const double before = model.Logit(row);
    SynthRow other;
    model.SampleRow(rng, &other);
    SynthRow noisy = row;
    for (int f : noise) noisy.values[f] = other.values[f];
    EXPECT_EQ(model.Logit(noisy), before);
    SynthRow changed = row;
    changed.values[FindField(spec, "C1")] = other.values[FindField(spec, "C1")];
    moved += model.Logit(changed) != before;
  }
  EXPECT_GT(moved, 100);
}

TEST(PlantedModelTest, ExplicitNoiseListAndNone) {
  SynthOptions o = Options(DataFormat::kAvazu);
  o.noise_fields = std::vector<std::string>{"site_id", "C21"};
  PlantedModel model = PlantedModel::Create(o);
  int noise = 0;
  for (const SynthField& f : model.fields()) noise += f.noise;
  EXPECT_EQ(noise, 2);
  EXPECT_TRUE(model.fields()[FindField(GetDatasetSpec(o.format), "site_id")].noise);
  o.noise_fields = std::vector<std::string>{};
  PlantedModel none = PlantedModel::Create(o);
  for (const SynthField& f : none.fields()) EXPECT_FALSE(f.noise);
}

TEST(PlantedModelTest, TermsHaveTheirConfiguredSpread) {
  SynthOptions o = Options(DataFormat::kCriteo);
  PlantedModel model = PlantedModel::Create(o);
  std::vector<SynthRow> rows = Sample(model, 40000, 11);
  double sum[4] = {}, sq[4] = {};
  for (const SynthRow& row : rows) {
    LogitTerms t = model.Terms(row);
    const double v[4] = {t.first_order, t.interaction, t.mlp, t.numeric};
    for (int i = 0; i < 4; ++i) {
      sum[i] += v[i];
      sq[i] += v[i] * v[i];
    }
  }
  const double want[4] = {o.model.first_order_std, o.model.interaction_std, o.model.mlp_std,
                          o.model.numeric_std};
  for (int i = 0; i < 4; ++i) {
    const double mean = sum[i] / rows.size();
    EXPECT_NEAR(std::sqrt(sq[i] / rows.size() - mean * mean), want[i], 0.1 * want[i]) << "term " << i;
  }
  // Each richer model class can do better: the planted structure needs
  // pairs beyond an additive model, and more than pairs beyond that.
  const OracleAucs& oracle = model.oracle_aucs();
  EXPECT_GT(oracle.additive, 0.65);
  EXPECT_GT(oracle.with_interactions, oracle.additive + 0.02);
  EXPECT_GT(oracle.full, oracle.with_interactions + 0.02);
}

TEST(PlantedModelTest, MlpTermIsNotAdditive) {
  // f(a, b) - f(a', b) - f(a, b') + f(a', b') vanishes for any function that
  // is a sum of one-field parts; the MLP term must not.
  SynthOptions o = Options(DataFormat::kCriteo);
  o.model.num_interaction_pairs = 0;
  o.model.first_order_std = 0;
  o.model.numeric_std = 0;
  PlantedModel model = PlantedModel::Create(o);
  ASSERT_GE(model.mlp_fields().size(), 2u);
  const int fa = model.mlp_fields()[0], fb = model.mlp_fields()[1];
  std::vector<SynthRow> rows = Sample(model, 400, 5);
  double max_abs = 0;
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    SynthRow ab = rows[i], a2b = rows[i], ab2 = rows[i], a2b2 = rows[i];
    a2b.values[fa] = a2b2.values[fa] = rows[i + 1].values[fa];
    ab2.values[fb] = a2b2.values[fb] = rows[i + 1].values[fb];
    const double d = model.Terms(ab).mlp - model.Terms(a2b).mlp - model.Terms(ab2).mlp +
                     model.Terms(a2b2).mlp;
    max_abs = std::max(max_abs, std::abs(d));
  }
  EXPECT_GT(max_abs, 0.1);
}

TEST(PlantedModelTest, FieldsFollowTheirProfiles) {
  SynthOptions o = Options(DataFormat::kCriteo);
  PlantedModel model = PlantedModel::Create(o);
  const DatasetSpec& spec = GetDatasetSpec(o.format);
  std::vector<SynthRow> rows = Sample(model, 50000, 9);
  auto missing_share = [&](const char* name) {
    const int f = FindField(spec, name);
    const int64_t missing_value = model.fields()[f].cardinality == 0 ? kMissingNumeric : 0;
    double n = 0;
    for (const SynthRow& r : rows) n += r.values[f] == missing_value;
    return n / rows.size();
  };
  EXPECT_NEAR(missing_share("I12"), model.fields()[FindField(spec, "I12")].missing_prob, 0.01);
  EXPECT_GT(missing_share("I12"), 0.7);   // real Criteo: 77%
  EXPECT_NEAR(missing_share("C22"), 0.76, 0.03);
  EXPECT_EQ(missing_share("C1"), 0.0);
  // I2 has negatives, I5 a heavy tail.
  const int i2 = FindField(spec, "I2"), i5 = FindField(spec, "I5");
  int negatives = 0;
  int64_t max_i5 = 0;
  for (const SynthRow& r : rows) {
    negatives += r.values[i2] < 0 && r.values[i2] != kMissingNumeric;
    max_i5 = std::max(max_i5, r.values[i5]);
  }
  EXPECT_NEAR(negatives / 50000.0, 0.08, 0.01);
  EXPECT_GT(max_i5, 200000);  // median 2500
  // Avazu's device_id: one anonymous value in about 80% of rows.
  SynthOptions a = Options(DataFormat::kAvazu);
  PlantedModel avazu = PlantedModel::Create(a);
  const int dev = FindField(GetDatasetSpec(a.format), "device_id");
  double head = 0;
  for (const SynthRow& r : Sample(avazu, 20000, 2)) head += r.values[dev] == 1;
  EXPECT_NEAR(head / 20000, 0.8, 0.02);
}

TEST(PlantedModelTest, VocabularyScaling) {
  const DatasetSpec& spec = GetDatasetSpec(DataFormat::kCriteo);
  const FieldSpec& c3 = spec.fields[FindField(spec, "C3")];
  const FieldSpec& c9 = spec.fields[FindField(spec, "C9")];
  EXPECT_EQ(ScaledCardinality(c3, 1.0), 10131227);
  EXPECT_EQ(ScaledCardinality(c3, 10.0), 101312270);
  EXPECT_EQ(ScaledCardinality(c3, 1e-6), kClosedVocabMax);
  EXPECT_EQ(ScaledCardinality(c9, 100.0), 3);  // a closed vocabulary
  int64_t total = 0;
  for (const FieldSpec& f : spec.fields) total += ScaledCardinality(f, 1.0);
  EXPECT_GT(total, 30000000);  // real-sized: ~34M distinct Criteo values
}

}  // namespace
}  // namespace ctrps::worker::synth
