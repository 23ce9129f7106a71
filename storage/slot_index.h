// A fixed-capacity open-addressing map from Key to a slot number, with
// deletion (backward-shift, no tombstones), for the tiered store's DRAM
// tier. Linear probing; capacity is a power of two >= 2x the slots, so
// probes stay short. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"

namespace ctrps::storage {

class SlotIndex {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  static constexpr size_t kBytesPerSlot = 2 * sizeof(Key) * 2;  // two 16-byte entries per slot

  explicit SlotIndex(size_t max_slots = 0) {
    size_t c = 16;
    while (c < 2 * max_slots) c *= 2;
    entries_.assign(c, Entry{});
    mask_ = c - 1;
  }

  uint32_t Find(Key key) const {
    for (size_t i = Mix64(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.slot == kNone) return kNone;
      if (e.key == key) return e.slot;
    }
  }
  // Inserts key -> slot; the key must be absent.
  void Insert(Key key, uint32_t slot) {
    size_t i = Mix64(key) & mask_;
    while (entries_[i].slot != kNone) i = (i + 1) & mask_;
    entries_[i] = Entry{key, slot};
  }
  void Erase(Key key) {
    size_t i = Mix64(key) & mask_;
    while (entries_[i].slot != kNone && entries_[i].key != key) i = (i + 1) & mask_;
    if (entries_[i].slot == kNone) return;
    for (size_t j = i;;) {
      j = (j + 1) & mask_;
      if (entries_[j].slot == kNone) break;
      size_t home = Mix64(entries_[j].key) & mask_;
      // Entry j may move into the hole at i unless its home lies in (i, j].
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      entries_[i] = entries_[j];
      i = j;
    }
    entries_[i] = Entry{};
  }

 private:
  struct Entry {
    Key key = 0;
    uint32_t slot = kNone;
  };
  std::vector<Entry> entries_;
  size_t mask_ = 0;
};

}  // namespace ctrps::storage
