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

// The fields of a dataset, in column order. Field f's keys use table id f.
struct DatasetSchema {
  std::vector<std::string> field_names;
  int num_fields() const { return static_cast<int>(field_names.size()); }
};

}  // namespace ctrps::worker
