#include "worker/synth/planted_model.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "common/check.h"
#include "worker/eval/auc.h"

namespace ctrps::worker::synth {
namespace {

// Salts separating the uses of the seed; never change (the output would).
constexpr uint64_t kSeedSalt = 0x5eed5eed5eedULL;
constexpr uint64_t kImportanceSalt = 101, kStructureSalt = 102, kCalibrationSalt = 103,
                   kHourSalt = 104, kNumericSalt = 105;
constexpr int kCalibrationRows = 1 << 17;
constexpr int kMaxFields = 64;
constexpr int kMaxLatent = 32;
constexpr int kMlpNumericFields = 3;
constexpr double kMlpGain = 1.5;  // pre-activation std: enough to bend the S-curve

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// A tanh-shaped S-curve onto (-1, 1). Only exact IEEE operations (no libm
// call), so it is fast and bit-identical on every platform.
double Squash(double x) { return x / std::sqrt(1.0 + x * x); }

double Std(const std::vector<double>& v) {
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / v.size());
}

template <typename T>
void Shuffle(std::vector<T>* v, Rng& rng) {
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[rng.Next() % i]);
}

}  // namespace

PlantedModel PlantedModel::Create(const SynthOptions& options) {
  Status st = options.Validate();
  CHECK(st.ok()) << st.ToString();
  PlantedModel model;
  model.BuildStructure(options);
  model.Calibrate(options.model.target_ctr, options.model);
  return model;
}

void PlantedModel::BuildStructure(const SynthOptions& options) {
  format_ = options.format;
  seed_ = options.seed;
  const uint64_t seed_key = HashPair(options.seed, kSeedSalt);
  const DatasetSpec& spec = GetDatasetSpec(options.format);
  CHECK_LE(spec.fields.size(), static_cast<size_t>(kMaxFields));
  const std::vector<std::string> noise = options.ResolvedNoiseFields();
  double mean_weight = 0;
  for (const FieldSpec& f : spec.fields) mean_weight += f.missing_weight / spec.fields.size();
  const double missing_factor = mean_weight > 0 ? options.ResolvedMissingRate() / mean_weight : 0;

  std::vector<int> signal_categorical, signal_numeric;
  for (size_t i = 0; i < spec.fields.size(); ++i) {
    SynthField f;
    f.spec = spec.fields[i];
    f.cardinality = ScaledCardinality(f.spec, options.vocab_scale);
    f.missing_prob = std::min(0.95, f.spec.missing_weight * missing_factor);
    f.noise = std::find(noise.begin(), noise.end(), f.spec.name) != noise.end();
    f.importance = f.noise ? 0 : 0.3 + 0.7 * UnitFromHash(HashPair(seed_key, kImportanceSalt + 1000 * i));
    if (!f.noise) (f.spec.kind == FieldKind::kNumeric ? signal_numeric : signal_categorical).push_back(i);
    field_keys_.push_back(HashPair(seed_key, i + 1));
    // With a dominant head value (id 1), the Zipf tail covers ids 2..n.
    const uint64_t zipf_n = f.cardinality - (f.spec.head_prob > 0 && f.cardinality > 1 ? 1 : 0);
    samplers_.emplace_back(std::max<uint64_t>(1, zipf_n), options.zipf_exponent);
    fields_.push_back(std::move(f));
  }

  const PlantedModelOptions& m = options.model;
  Rng rng(HashPair(seed_key, kStructureSalt));
  latent_dim_ = m.latent_dim;
  std::vector<InteractionPair> all_pairs;
  for (size_t i = 0; i < signal_categorical.size(); ++i) {
    for (size_t j = i + 1; j < signal_categorical.size(); ++j) {
      all_pairs.push_back({signal_categorical[i], signal_categorical[j], 0});
    }
  }
  Shuffle(&all_pairs, rng);
  pairs_.assign(all_pairs.begin(), all_pairs.begin() + m.num_interaction_pairs);
  for (InteractionPair& p : pairs_) p.weight = (rng.Next() & 1 ? 1 : -1) * (0.5 + rng.Uniform());
  std::sort(pairs_.begin(), pairs_.end(),
            [](const InteractionPair& x, const InteractionPair& y) { return std::tie(x.a, x.b) < std::tie(y.a, y.b); });

  Shuffle(&signal_categorical, rng);
  Shuffle(&signal_numeric, rng);
  const int mlp_cat = m.num_mlp_fields;
  const int mlp_num = m.num_mlp_fields > 0 ? std::min<int>(kMlpNumericFields, signal_numeric.size()) : 0;
  mlp_fields_.assign(signal_categorical.begin(), signal_categorical.begin() + mlp_cat);
  std::sort(mlp_fields_.begin(), mlp_fields_.end());
  std::vector<int> mlp_numeric(signal_numeric.begin(), signal_numeric.begin() + mlp_num);
  std::sort(mlp_numeric.begin(), mlp_numeric.end());
  mlp_fields_.insert(mlp_fields_.end(), mlp_numeric.begin(), mlp_numeric.end());

  needs_latent_.assign(fields_.size(), 0);
  for (const InteractionPair& p : pairs_) needs_latent_[p.a] = needs_latent_[p.b] = 1;
  for (int f : mlp_fields_) {
    if (fields_[f].spec.kind != FieldKind::kNumeric) needs_latent_[f] = 1;
  }

  mlp_in_ = mlp_cat * latent_dim_ + mlp_num;
  mlp_h1_ = mlp_in_ > 0 ? m.mlp_hidden : 0;
  mlp_h2_ = mlp_in_ > 0 ? m.mlp_hidden / 2 : 0;
  auto fill = [&rng](std::vector<double>* v, size_t n, double std) {
    v->resize(n);
    for (double& x : *v) x = std * rng.Normal();
  };
  fill(&w1_, static_cast<size_t>(mlp_h1_) * mlp_in_, kMlpGain / std::sqrt(std::max(1, mlp_in_)));
  fill(&b1_, mlp_h1_, 0.5);
  fill(&w2_, static_cast<size_t>(mlp_h2_) * mlp_h1_, kMlpGain / std::sqrt(std::max(1, mlp_h1_)));
  fill(&b2_, mlp_h2_, 0.25);
  fill(&w3_, mlp_h2_, 1.0);

  if (format_ == DataFormat::kAvazu) {
    // A daily cycle (peak at a seed-chosen hour) plus per-hour noise.
    const double peak = 24 * UnitFromHash(HashPair(seed_key, kHourSalt));
    for (int h = 0; h < 24; ++h) {
      hour_effect_[h] = 0.6 * std::cos(6.283185307179586 * (h - peak) / 24) +
                        0.2 * NormalFromHash(HashPair(seed_key, kHourSalt + 1 + h));
    }
  }
}

void PlantedModel::Calibrate(double target_ctr, const PlantedModelOptions& m) {
  Rng rng(HashPair(HashPair(seed_, kSeedSalt), kCalibrationSalt));
  std::vector<LogitTerms> raw(kCalibrationRows);
  SynthRow row;
  for (LogitTerms& t : raw) {
    SampleRow(rng, &row);
    row.hour_of_day = static_cast<int>(rng.Next() % 24);
    t = RawTerms(row);
  }
  std::vector<double> column(raw.size());
  auto scale_of = [&](double LogitTerms::*term, double target) {
    for (size_t i = 0; i < raw.size(); ++i) column[i] = raw[i].*term;
    double s = Std(column);
    return s > 1e-12 ? target / s : 0.0;
  };
  scale_.first_order = scale_of(&LogitTerms::first_order, m.first_order_std);
  scale_.interaction = scale_of(&LogitTerms::interaction, m.interaction_std);
  scale_.mlp = scale_of(&LogitTerms::mlp, m.mlp_std);
  scale_.numeric = scale_of(&LogitTerms::numeric, m.numeric_std);
  for (size_t i = 0; i < raw.size(); ++i) {
    const LogitTerms& t = raw[i];
    column[i] = scale_.first_order * t.first_order + scale_.interaction * t.interaction +
                scale_.mlp * t.mlp + scale_.numeric * t.numeric;
  }
  logit_std_ = Std(column);
  // Mean click probability is increasing in the bias: bisect.
  double lo = -40, hi = 40;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double l : column) mean += Sigmoid(mid + l);
    (mean / column.size() < target_ctr ? lo : hi) = mid;
  }
  bias_ = 0.5 * (lo + hi);

  std::vector<ScoredExample> additive(raw.size()), pairs(raw.size()), full(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const LogitTerms& t = raw[i];
    const float y = rng.Uniform() < Sigmoid(bias_ + column[i]) ? 1.0f : 0.0f;
    const double a = scale_.first_order * t.first_order + scale_.numeric * t.numeric;
    additive[i] = {static_cast<float>(a), y};
    pairs[i] = {static_cast<float>(a + scale_.interaction * t.interaction), y};
    full[i] = {static_cast<float>(column[i]), y};
  }
  oracle_ = {AucInPlace(&additive), AucInPlace(&pairs), AucInPlace(&full)};
}

void PlantedModel::SampleRow(Rng& rng, SynthRow* row) const {
  row->values.resize(fields_.size());
  for (size_t i = 0; i < fields_.size(); ++i) {
    const SynthField& f = fields_[i];
    const bool missing = f.missing_prob > 0 && rng.Uniform() < f.missing_prob;
    if (f.spec.kind != FieldKind::kNumeric) {
      int64_t id = 0;
      if (!missing) {
        const bool has_head = f.spec.head_prob > 0 && f.cardinality > 1;
        if (has_head && rng.Uniform() < f.spec.head_prob) {
          id = 1;
        } else {
          id = static_cast<int64_t>(samplers_[i].Sample(rng)) + (has_head ? 1 : 0);
        }
      }
      row->values[i] = id;
      continue;
    }
    if (missing) {
      row->values[i] = kMissingNumeric;
      continue;
    }
    const double r = rng.Uniform();
    if (r < f.spec.negative_prob) {
      const double q = rng.Uniform();  // -1, -2, -3 with 70/20/10%
      row->values[i] = q < 0.7 ? -1 : (q < 0.9 ? -2 : -3);
    } else if (r < f.spec.negative_prob + f.spec.zero_prob) {
      row->values[i] = 0;
    } else {
      const double x = std::exp(f.spec.log_mean + f.spec.log_sigma * rng.Normal());
      row->values[i] = static_cast<int64_t>(std::min(x, 1e12));
    }
  }
}

uint64_t PlantedModel::ValueKey(int field, int64_t id) const {
  return HashPair(field_keys_[field], static_cast<uint64_t>(id));
}

void PlantedModel::Latent(int field, int64_t id, double* out) const {
  const uint64_t key = ValueKey(field, id);
  for (int c = 0; c * 4 < latent_dim_; ++c) {
    const uint64_t h = HashPair(key, c + 1);
    for (int j = c * 4; j < std::min(latent_dim_, c * 4 + 4); ++j) {
      const double u = static_cast<double>((h >> (16 * (j - c * 4))) & 0xffff) * (1.0 / 65536);
      out[j] = (u - 0.5) * 3.4641016151377544;  // uniform with unit variance
    }
  }
}

double PlantedModel::FirstOrderWeight(int field, int64_t id) const {
  const SynthField& f = fields_[field];
  if (f.noise || f.spec.kind == FieldKind::kNumeric) return 0;
  return scale_.first_order * f.importance * NormalFromHash(HashPair(ValueKey(field, id), 0));
}

double PlantedModel::NumericEffect(int field, int64_t x) const {
  const SynthField& f = fields_[field];
  const uint64_t key = HashPair(field_keys_[field], kNumericSalt);
  if (x == kMissingNumeric) return 0.5 * NormalFromHash(HashPair(key, 1));
  if (x < 0) return 0.5 * NormalFromHash(HashPair(key, 2));
  // A smooth S-curve in log(1 + x) around the field's typical value.
  const double sign = (key & 1) ? 1.0 : -1.0;
  const double z = (std::log1p(static_cast<double>(x)) - f.spec.log_mean) / f.spec.log_sigma;
  return sign * f.importance * Squash(z);
}

LogitTerms PlantedModel::RawTerms(const SynthRow& row) const {
  LogitTerms t;
  double latent[kMaxFields][kMaxLatent];
  for (size_t i = 0; i < fields_.size(); ++i) {
    const SynthField& f = fields_[i];
    if (f.noise) continue;
    const int64_t v = row.values[i];
    if (f.spec.kind == FieldKind::kNumeric) {
      t.numeric += NumericEffect(i, v);
      continue;
    }
    t.first_order += f.importance * NormalFromHash(HashPair(ValueKey(i, v), 0));
    if (needs_latent_[i]) Latent(i, v, latent[i]);
  }
  if (format_ == DataFormat::kAvazu) t.first_order += hour_effect_[row.hour_of_day];
  const double inv_sqrt_k = 1.0 / std::sqrt(static_cast<double>(latent_dim_));
  for (const InteractionPair& p : pairs_) {
    double dot = 0;
    for (int j = 0; j < latent_dim_; ++j) dot += latent[p.a][j] * latent[p.b][j];
    t.interaction += p.weight * dot * inv_sqrt_k;
  }
  if (mlp_in_ > 0) {
    double in[kMaxFields * kMaxLatent], h1[64], h2[32];
    int n = 0;
    for (int f : mlp_fields_) {
      if (fields_[f].spec.kind != FieldKind::kNumeric) {
        for (int j = 0; j < latent_dim_; ++j) in[n++] = latent[f][j];
      } else {
        const int64_t x = row.values[f];
        const FieldSpec& s = fields_[f].spec;
        in[n++] = x == kMissingNumeric ? 0.0
                                       : (std::log1p(static_cast<double>(std::max<int64_t>(x, 0))) - s.log_mean) / s.log_sigma;
      }
    }
    // Input-major weights: the inner loops run over independent outputs,
    // so they vectorise without reordering any sum.
    for (int h = 0; h < mlp_h1_; ++h) h1[h] = b1_[h];
    for (int j = 0; j < mlp_in_; ++j) {
      const double* w = &w1_[static_cast<size_t>(j) * mlp_h1_];
      for (int h = 0; h < mlp_h1_; ++h) h1[h] += w[h] * in[j];
    }
    for (int h = 0; h < mlp_h1_; ++h) h1[h] = Squash(h1[h]);
    for (int h = 0; h < mlp_h2_; ++h) h2[h] = b2_[h];
    for (int j = 0; j < mlp_h1_; ++j) {
      const double* w = &w2_[static_cast<size_t>(j) * mlp_h2_];
      for (int h = 0; h < mlp_h2_; ++h) h2[h] += w[h] * h1[j];
    }
    for (int h = 0; h < mlp_h2_; ++h) h2[h] = Squash(h2[h]);
    for (int h = 0; h < mlp_h2_; ++h) t.mlp += w3_[h] * h2[h];
  }
  return t;
}

LogitTerms PlantedModel::Terms(const SynthRow& row) const {
  LogitTerms t = RawTerms(row);
  t.first_order *= scale_.first_order;
  t.interaction *= scale_.interaction;
  t.mlp *= scale_.mlp;
  t.numeric *= scale_.numeric;
  return t;
}

double PlantedModel::Probability(const SynthRow& row) const { return Sigmoid(Logit(row)); }

}  // namespace ctrps::worker::synth
