// A flat open-addressing hash map from Key to a dense row index (0, 1, 2...).
// Linear probing, power-of-two capacity, load factor <= 0.5. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"

namespace ctrps {

class FlatKeyMap {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;

  explicit FlatKeyMap(size_t initial_capacity = 1024) { Rehash(RoundUp(initial_capacity)); }

  size_t size() const { return size_; }

  // The hash the map probes `key` by. Batch callers hash a batch first,
  // prefetch each key's slot a few keys ahead, then call the *Hashed forms,
  // so the cache misses of a large map overlap.
  static uint64_t Hash(Key key) { return Mix64(key); }
  void Prefetch(uint64_t hash) const {
    __builtin_prefetch(slots_.data() + (hash & (slots_.size() - 1)));
  }

  // Returns the index of `key`, or kEmpty.
  uint32_t Find(Key key) const { return FindHashed(key, Hash(key)); }
  // Find, with hash == Hash(key).
  uint32_t FindHashed(Key key, uint64_t hash) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.index == kEmpty) return kEmpty;
      if (s.key == key) return s.index;
    }
  }

  // Returns the index of `key`, inserting it with index size() if absent.
  // *inserted tells which happened.
  uint32_t FindOrInsert(Key key, bool* inserted) {
    return FindOrInsertHashed(key, Hash(key), inserted);
  }
  // FindOrInsert, with hash == Hash(key).
  uint32_t FindOrInsertHashed(Key key, uint64_t hash, bool* inserted) {
    if ((size_ + 1) * 2 > slots_.size()) Rehash(slots_.size() * 2);
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.index == kEmpty) {
        s.key = key;
        s.index = static_cast<uint32_t>(size_++);
        *inserted = true;
        return s.index;
      }
      if (s.key == key) {
        *inserted = false;
        return s.index;
      }
    }
  }

  void Clear() {
    slots_.assign(slots_.size(), Slot{});
    size_ = 0;
  }

  // Calls fn(key, index) for every entry.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.index != kEmpty) fn(s.key, s.index);
  }

 private:
  struct Slot {
    Key key = 0;
    uint32_t index = kEmpty;
  };
  static size_t RoundUp(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
  }
  void Rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    size_t mask = capacity - 1;
    for (const Slot& s : old) {
      if (s.index == kEmpty) continue;
      size_t i = Mix64(s.key) & mask;
      while (slots_[i].index != kEmpty) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace ctrps
