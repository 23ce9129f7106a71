// The columns of the two supported datasets, shaped after the real Criteo
// (Kaggle display advertising) and Avazu (CTR prediction) data: per-field
// vocabulary sizes, missing-value profiles and integer distributions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ctrps::worker::synth {

enum class DataFormat {
  kCriteo,  // label, I1-I13, C1-C26; tab-separated, no header
  kAvazu,   // header; id, click, hour, 21 categorical columns; comma-separated
};

const char* FormatName(DataFormat format);  // "criteo", "avazu"
StatusOr<DataFormat> ParseFormat(std::string_view name);

enum class FieldKind {
  kNumeric,   // Criteo I1-I13: a heavy-tailed integer, may be negative or empty
  kHexToken,  // a categorical value written as 8 lowercase hex digits
  kIntToken,  // an Avazu categorical value written as an integer code
};

struct FieldSpec {
  std::string name;
  FieldKind kind = FieldKind::kHexToken;
  // Categorical: distinct values at vocab_scale 1 (the real dataset's count).
  int64_t cardinality = 0;
  // The field's share of the dataset's missing rate; 0: never missing.
  double missing_weight = 0;
  // Categorical: probability of one dominant value (id 1) drawn before the
  // Zipf tail (e.g. Avazu's anonymous device_id, C20's -1).
  double head_prob = 0;
  // Numeric: negative (-1, -2 or -3) with negative_prob, else 0 with
  // zero_prob, else floor(exp(log_mean + log_sigma * N(0, 1))).
  double log_mean = 0, log_sigma = 0, zero_prob = 0, negative_prob = 0;
  // kIntToken: value id i (1-based) is written as int_values[i - 1] while
  // listed, then int_base + int_stride * (i - 1 - int_values.size()).
  std::vector<int64_t> int_values;
  int64_t int_base = 0, int_stride = 1;
};

struct DatasetSpec {
  DataFormat format;
  std::vector<FieldSpec> fields;  // feature columns in file order
  double default_missing_rate;    // mean missing probability over fields
  std::vector<std::string> default_noise_fields;
};

const DatasetSpec& GetDatasetSpec(DataFormat format);

// Index of the field called `name`, or -1.
int FindField(const DatasetSpec& spec, std::string_view name);

// Fields with at most this many values are closed vocabularies (device
// types, banner positions, small codes) and keep their size at any scale.
inline constexpr int64_t kClosedVocabMax = 1000;

// The field's vocabulary size under vocab_scale: closed vocabularies as
// they are, larger ones round(cardinality * scale) but at least
// kClosedVocabMax. 0 for numeric fields.
int64_t ScaledCardinality(const FieldSpec& field, double vocab_scale);

}  // namespace ctrps::worker::synth
