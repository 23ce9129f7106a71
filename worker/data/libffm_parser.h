// libffm text format: "label field:feature:value field:feature:value ...",
// tokens separated by runs of spaces or tabs.
//
//   label    0 or 1; -1 and +1 are read as 0 and 1
//   field    decimal index in [0, num_fields)
//   feature  any non-empty token without control bytes, hashed as is
//            (case-sensitive, "007" and "7" differ)
//   value    decimal number, finite as a float; it multiplies the field's embedding
//
// Each field may appear at most once per line (a batch holds one key per
// field); a field that does not appear is its missing key, value 1.
#pragma once

#include <vector>

#include "worker/data/feature_hasher.h"
#include "worker/data/line_parser.h"

namespace ctrps::worker {

class LibffmParser : public LineParser {
 public:
  // labeled false: lines of features only (no label token).
  LibffmParser(int num_fields, uint64_t hash_seed, bool labeled = true);

  const DatasetSchema& schema() const override { return schema_; }
  bool Parse(std::string_view line, float* label, Key* keys, float* values,
             ParseError* error) override;
  // "label" for token 0, "token N" after it.
  std::string ColumnName(int column) const override;

 private:
  bool ParseToken(int index, std::string_view token, Key* keys, float* values, ParseError* error);

  FeatureHasher hasher_;
  bool labeled_;
  DatasetSchema schema_;
  std::vector<uint8_t> seen_;  // per field, reset per line
};

}  // namespace ctrps::worker
