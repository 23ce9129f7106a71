#include "storage/row_init.h"

#include "common/hash.h"

namespace ctrps::storage {

void InitRow(const RowInitOptions& opt, Key key, int dim, int slot_floats, float* row) {
  uint64_t state = Mix64(key ^ Mix64(opt.seed + 0x51ed2701ULL));
  for (int i = 0; i < dim; ++i) {
    state += 0x9e3779b97f4a7c15ULL;  // splitmix64 stream
    uint64_t r = Mix64(state);
    // 24 random bits -> uniform in [-1, 1).
    float u = static_cast<float>(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
    row[i] = i < opt.zero_prefix ? 0.0f : u * opt.scale;
  }
  int with_value = opt.slot_value_count < 0 ? slot_floats : opt.slot_value_count;
  for (int s = 0; s < slot_floats; ++s) row[dim + s] = s < with_value ? opt.slot_value : 0.0f;
  if (opt.z_scale > 0) {
    for (int i = 0; i < dim && i < slot_floats; ++i) {
      const float w = row[i];
      row[dim + i] = w == 0.0f ? 0.0f : -w * opt.z_scale - (w > 0 ? opt.z_offset : -opt.z_offset);
    }
  }
}

}  // namespace ctrps::storage
