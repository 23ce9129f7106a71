// PlantedModel: the known click model behind a synthetic dataset. It draws
// a row's feature values and gives the row's true click probability, so the
// data comes with its Bayes-optimal predictions (see SynthOptions for the
// form of the logit).
//
// Immutable after Create and thread-safe: generator threads share one.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "worker/synth/field_specs.h"
#include "worker/synth/synth_options.h"
#include "worker/synth/synth_random.h"
#include "worker/synth/zipf.h"

namespace ctrps::worker::synth {

inline constexpr int64_t kMissingNumeric = std::numeric_limits<int64_t>::min();

// One row's feature values as the model sees them.
struct SynthRow {
  // One per field, in column order. Categorical: a value id in
  // [1, cardinality], 0 when missing. Numeric: the integer, or kMissingNumeric.
  std::vector<int64_t> values;
  int hour_of_day = 0;  // Avazu: 0-23, set from the row's position
};

// A field resolved against the options.
struct SynthField {
  FieldSpec spec;
  int64_t cardinality = 0;  // 0 for numeric fields
  double missing_prob = 0;
  bool noise = false;       // never read by the click model
  double importance = 0;    // scale of the field's own effects; 0 for noise
};

struct InteractionPair {
  int a, b;       // field indices, a < b
  double weight;  // r_ab
};

// The logit's terms for one row, each already scaled to its configured std.
struct LogitTerms {
  double first_order = 0, interaction = 0, mlp = 0, numeric = 0;
  double Sum() const { return first_order + interaction + mlp + numeric; }
};

// AUCs of partial logits on the calibration sample (labels drawn from the
// full model): how far each model class can get at best. An additive
// (LR-like) model can reach at least `additive`, a field-pair (FM/FwFM)
// model at least `with_interactions`, and only a model of higher-order
// interactions (an MLP over embeddings) reaches `full`, the Bayes AUC.
struct OracleAucs {
  double additive = 0;           // first_order + numeric
  double with_interactions = 0;  // + interaction
  double full = 0;               // + mlp: every term
};

class PlantedModel {
 public:
  // Builds the model for options that passed Validate() (CHECKed): draws
  // the pairs and the MLP from the seed, then measures each term's spread,
  // solves the bias and measures OracleAucs on a fixed sample of 131072
  // rows (about 0.3 s).
  static PlantedModel Create(const SynthOptions& options);

  // Draws one row's feature values (hour_of_day is left to the caller).
  void SampleRow(Rng& rng, SynthRow* row) const;

  LogitTerms Terms(const SynthRow& row) const;
  double Logit(const SynthRow& row) const { return bias_ + Terms(row).Sum(); }
  double Probability(const SynthRow& row) const;

  DataFormat format() const { return format_; }
  uint64_t seed() const { return seed_; }
  int num_fields() const { return static_cast<int>(fields_.size()); }
  const std::vector<SynthField>& fields() const { return fields_; }
  const std::vector<InteractionPair>& pairs() const { return pairs_; }
  const std::vector<int>& mlp_fields() const { return mlp_fields_; }  // categorical, then numeric
  double bias() const { return bias_; }
  // Std of the whole logit over the calibration sample.
  double logit_std() const { return logit_std_; }
  const OracleAucs& oracle_aucs() const { return oracle_; }
  // The scaled first-order weight of a categorical value (id 0: missing);
  // exactly 0 for noise fields.
  double FirstOrderWeight(int field, int64_t id) const;

 private:
  PlantedModel() = default;
  void BuildStructure(const SynthOptions& options);
  void Calibrate(double target_ctr, const PlantedModelOptions& m);
  LogitTerms RawTerms(const SynthRow& row) const;
  uint64_t ValueKey(int field, int64_t id) const;
  void Latent(int field, int64_t id, double* out) const;  // latent_dim_ values, unit variance
  double NumericEffect(int field, int64_t x) const;

  DataFormat format_ = DataFormat::kCriteo;
  uint64_t seed_ = 0;
  std::vector<SynthField> fields_;
  std::vector<uint64_t> field_keys_;
  std::vector<ZipfSampler> samplers_;  // per field; unused for numeric fields
  std::vector<uint8_t> needs_latent_;
  int latent_dim_ = 0;
  std::vector<InteractionPair> pairs_;
  std::vector<int> mlp_fields_;
  int mlp_in_ = 0, mlp_h1_ = 0, mlp_h2_ = 0;
  std::vector<double> w1_, b1_, w2_, b2_, w3_;  // w1_, w2_ input-major
  double hour_effect_[24] = {};
  LogitTerms scale_{1, 1, 1, 1};
  double bias_ = 0, logit_std_ = 0;
  OracleAucs oracle_;
};

}  // namespace ctrps::worker::synth
