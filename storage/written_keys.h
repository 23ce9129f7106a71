// WrittenKeys (private to storage/): an in-memory, growing Bloom filter of
// the keys written to a table since it was known to be empty. It answers
// "certainly never written" (so certainly absent on disk) or "maybe", which
// lets a bulk load into an empty table (checkpoint restore: DropTable +
// CreateTable + Put) skip reading the rows it is about to write, while the
// row counts stay exact: a "maybe" key is still read.
//
// Blocked Bloom filter (one 64-byte block per key, 6 bits in it, about 10
// bits per key): a query costs one cache line per segment. It grows by
// adding segments of doubling capacity, so it needs no size up front;
// with s segments the false-positive rate is below s * 1.5%. Memory is
// about 1.3 bytes per key written. Not thread-safe (the table lock guards it).
#pragma once

#include <cstdint>
#include <vector>

#include "common/hash.h"
#include "common/keys.h"

namespace ctrps::storage {

class WrittenKeys {
 public:
  bool MayContain(Key key) const {
    const uint64_t h = Hash(key);
    for (const Segment& s : segments_)
      if (s.MayContain(h)) return true;
    return false;
  }

  void Add(Key key) {
    if (segments_.empty() || segments_.back().count == segments_.back().capacity)
      segments_.emplace_back(segments_.empty() ? kFirstCapacity : 2 * segments_.back().capacity);
    segments_.back().Add(Hash(key));
  }

  size_t bytes() const {
    size_t b = 0;
    for (const Segment& s : segments_) b += s.blocks.size() * sizeof(Block);
    return b;
  }

 private:
  static constexpr size_t kFirstCapacity = size_t{1} << 16;  // keys
  static constexpr int kProbes = 6;
  struct alignas(64) Block {
    uint64_t w[8] = {};
  };
  struct Segment {
    explicit Segment(size_t cap) : capacity(cap), blocks((cap * 10 + 511) / 512) {}
    size_t capacity;
    size_t count = 0;
    std::vector<Block> blocks;

    // Block from the high half of h, bit positions from a second mix of h
    // (9 bits each: 3 pick the word, 6 the bit).
    bool MayContain(uint64_t h) const {
      const Block& b = blocks[((h >> 32) * blocks.size()) >> 32];
      h = Mix64(h);
      for (int p = 0; p < kProbes; ++p, h >>= 9)
        if (!(b.w[(h >> 6) & 7] & (uint64_t{1} << (h & 63)))) return false;
      return true;
    }
    void Add(uint64_t h) {
      Block& b = blocks[((h >> 32) * blocks.size()) >> 32];
      h = Mix64(h);
      for (int p = 0; p < kProbes; ++p, h >>= 9) b.w[(h >> 6) & 7] |= uint64_t{1} << (h & 63);
      ++count;
    }
  };
  // Independent of VirtualShardOf's hash, so a shard's keys still spread
  // over every block.
  static uint64_t Hash(Key key) { return Mix64(key ^ 0x5bd1e9955bd1e995ULL); }

  std::vector<Segment> segments_;
};

}  // namespace ctrps::storage
