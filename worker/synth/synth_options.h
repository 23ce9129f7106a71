// Options of the synthetic CTR data generator (`ctrps gen-data`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/synth/field_specs.h"

namespace ctrps::worker::synth {

// The planted click model:
//   logit = bias + first_order + interactions + mlp + numeric
//   first_order  = sum over signal fields of importance_f * w_f(value)
//                  (+ an hour-of-day effect for Avazu)
//   interactions = sum over chosen field pairs (i, j) of r_ij <v_i, v_j> / sqrt(k)
//   mlp          = a random 2-layer MLP, activation x / sqrt(1 + x^2) (a
//                  tanh-like S-curve that needs no libm), over the latent
//                  vectors of a few fields (and 3 numeric fields for Criteo):
//                  higher-order interactions that an FM cannot express
//   numeric      = a smooth function of log(1 + I_f) per numeric field, plus
//                  effects of being missing or negative
// w and v are derived from a hash of (seed, field, value id). Each term is
// rescaled to the std below (measured over rows) and the bias is solved so
// the mean click probability is target_ctr. Noise fields appear in no term.
struct PlantedModelOptions {
  double target_ctr = 0.22;       // mean click probability; in (0.001, 0.999)
  int latent_dim = 8;             // k of the per-value latent vectors; [1, 32]
  int num_interaction_pairs = 20; // planted field pairs; at most C(signal fields, 2)
  int num_mlp_fields = 6;         // categorical fields feeding the MLP; [0, 16]
  int mlp_hidden = 16;            // first hidden width (the second is half); [2, 64]
  // Standard deviation over rows of each logit term (0 switches it off).
  double first_order_std = 1.0;
  double interaction_std = 0.8;
  double mlp_std = 0.8;
  double numeric_std = 0.5;       // Criteo only (Avazu has no numeric fields)

  // num_signal_fields: categorical fields that are not noise.
  [[nodiscard]] Status Validate(int num_signal_fields) const;
};

struct SynthOptions {
  DataFormat format = DataFormat::kCriteo;
  std::string out_dir;  // created if absent; existing dataset files are replaced
  int64_t train_rows = 0;  // > 0
  // Rows of valid and of test each; default max(1, train_rows / 10); 0
  // writes no valid/test files.
  std::optional<int64_t> eval_rows;
  uint64_t seed = 1;
  // Fields the click model never reads; default the format's
  // DatasetSpec::default_noise_fields; empty: none.
  std::optional<std::vector<std::string>> noise_fields;
  // Multiplies vocabularies above kClosedVocabMax values: 1 is real-sized
  // (about 34M Criteo / 9.5M Avazu values in all); 0.001 gives thousands,
  // 10 hundreds of millions. (0, 100].
  double vocab_scale = 1.0;
  double zipf_exponent = 1.1;  // value frequency ~ rank^-s; (0, 10]
  // Mean probability that a feature column is missing, spread over fields
  // by the dataset's real missing profile (each field capped at 0.95);
  // default DatasetSpec::default_missing_rate (Criteo 0.14, Avazu 0). [0, 0.95].
  std::optional<double> missing_rate;
  int threads = 2;             // generator threads; the output never depends on it. [1, 256]
  bool show_progress = true;   // progress bar / log lines while writing
  PlantedModelOptions model;

  [[nodiscard]] Status Validate() const;

  // The values the defaults resolve to for this format.
  int64_t ResolvedEvalRows() const;
  std::vector<std::string> ResolvedNoiseFields() const;
  double ResolvedMissingRate() const;
};

// A canonical text of every option that affects the output (not threads or
// progress) and the generator version: equal fingerprints mean
// byte-identical datasets. Stored in meta.json to skip regeneration.
std::string SynthFingerprint(const SynthOptions& options);

}  // namespace ctrps::worker::synth
