// A batch of parsed examples, the unit the data pipeline hands to training.
// Every example has exactly one key per field (an absent value is the
// field's own "missing" key), so batches are dense B x F arrays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/keys.h"

namespace ctrps::worker {

struct Batch {
  int num_fields = 0;
  std::vector<float> labels;  // B labels in {0, 1}
  std::vector<Key> keys;      // B * num_fields, row-major: keys[b * num_fields + f]
  // B * num_fields: the scalar multiplying field f's embedding for example b.
  // 1 for categorical features; the scaled value for numeric fields in
  // "scale" mode (one embedding per field, scaled by the value).
  std::vector<float> values;

  int size() const { return static_cast<int>(labels.size()); }
  void Clear() { labels.clear(); keys.clear(); values.clear(); }
  void Reserve(int b) {
    labels.reserve(b);
    keys.reserve(static_cast<size_t>(b) * num_fields);
    values.reserve(static_cast<size_t>(b) * num_fields);
  }
};

// The fields of a dataset, in column order. Field f's keys use table id f,
// unless the parser keeps a subset of the data's fields (a model with
// removed fields, ParserOptions::keep_fields): then field f is the data's
// field table_ids[f], whose keys use that table id.
struct DatasetSchema {
  std::vector<std::string> field_names;
  std::vector<int> table_ids;  // empty: field f is table f
  int num_fields() const { return static_cast<int>(field_names.size()); }
  int TableOf(int f) const { return table_ids.empty() ? f : table_ids[f]; }
};

}  // namespace ctrps::worker
