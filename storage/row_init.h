// Key-seeded row initialisation: a new row's values are a pure function of
// (key, seed), so they do not depend on arrival order or sharding.
// Persisted behaviour (a resumed job re-creates rows): never change the
// formula for an existing `kind`.
#pragma once

#include <cstdint>

#include "common/keys.h"

namespace ctrps::storage {

struct RowInitOptions {
  uint64_t seed = 0;
  // Embedding values are uniform in [-scale, scale].
  float scale = 0.01f;
  // The first `zero_prefix` embedding floats start at 0 (e.g. a linear weight).
  int zero_prefix = 0;
  // Every optimizer slot starts at this value (e.g. Adagrad's initial accumulator).
  float slot_value = 0.0f;
  // Which slot floats take slot_value; the rest start at 0. -1 = all.
  int slot_value_count = -1;
  // FTRL: the first `dim` slots (its z) start at -w * z_scale - sign(w) *
  // z_offset for each initial embedding float w, so that FTRL's closed form
  // gives the initial vector back (n = 0) instead of zeros. 0 = off.
  float z_scale = 0.0f;
  float z_offset = 0.0f;
};

// Fills row[0 .. dim + slot_floats).
void InitRow(const RowInitOptions& opt, Key key, int dim, int slot_floats, float* row);

}  // namespace ctrps::storage
