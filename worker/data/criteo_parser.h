// Criteo display-ads TSV (train.txt of the Kaggle challenge and its
// derivatives): 40 tab-separated columns, label, I1-I13, C1-C26.
//
//   label  "0" or "1"
//   I1-I13 decimal integers, possibly negative, possibly empty
//   C1-C26 categorical tokens (8 lowercase hex digits in the original),
//          possibly empty; case-insensitive, any length, no control bytes
//
// Fields: I1..I13 are fields 0..12, C1..C26 fields 13..38. An empty column
// is its field's missing key with value 1. Integers are encoded as chosen
// by IntegerEncoding (line_parser.h).
#pragma once

#include <array>

#include "worker/data/feature_hasher.h"
#include "worker/data/line_parser.h"

namespace ctrps::worker {

class CriteoParser : public LineParser {
 public:
  static constexpr int kColumns = 40;
  static constexpr int kIntegerFields = 13;
  static constexpr int kCategoricalFields = 26;
  static constexpr int kFields = kIntegerFields + kCategoricalFields;

  // labeled false: lines without the label column (39 columns).
  CriteoParser(uint64_t hash_seed, IntegerEncoding encoding, bool labeled = true);

  const DatasetSchema& schema() const override { return schema_; }
  bool Parse(std::string_view line, float* label, Key* keys, float* values,
             ParseError* error) override;
  // "label", "I1".."I13", "C1".."C26" for columns 0..39.
  std::string ColumnName(int column) const override;

  // The log bucket of x > 2: floor(ln(x)^2). Exposed for tests.
  static int64_t LogBucket(int64_t x);
  // The scaled value of x: sign(x) * ln(1 + |x|). Exposed for tests.
  static float ScaledValue(int64_t x);

 private:
  bool ParseInteger(int field, std::string_view token, Key* key, float* value, ParseError* error) const;
  bool WrongColumnCount(std::string_view line, ParseError* error) const;

  FeatureHasher hasher_;
  IntegerEncoding encoding_;
  int first_column_;  // 0, or 1 without labels
  DatasetSchema schema_;
  std::array<Key, kIntegerFields> scaled_keys_;  // kScale: the one key per integer field
};

}  // namespace ctrps::worker
