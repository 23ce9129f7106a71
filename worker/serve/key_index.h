// The keys of one bundle table file, looked up in place in the mapped file.
// Two encodings (bundle.proto documents both byte layouts):
//   kU64     8-byte keys, strictly ascending (table file versions 1 and 2).
//   kPacked  the keys' hashes split at bit 56 - b: the top b bits pick one of
//            2^b buckets (b = PackedKeyBucketBits(n), about one key a bucket),
//            whose sizes are stored in unary (n + 2^b bits), and each key
//            keeps only its low 56 - b bits, packed. For the 1M-row tables of
//            Criteo-shape data about 5 bytes a key instead of 8, near the
//            log2 C(2^56, n) / n bits any lossless code needs; the table id
//            (the key's top 8 bits) is the file's.
// Either way Open builds the same in-memory bucket index (one uint32 a
// bucket), so a lookup reads one bucket entry and about one key: the packed
// form costs a shift and a mask more, not a search through encoded blocks.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "worker/serve/bundle.h"

namespace ctrps::worker::serve {

// Bucket bits b of a packed section of n keys: ceil(log2 n), in [1, 24].
int PackedKeyBucketBits(uint64_t n);
// Bytes of a key section of n keys (a multiple of 8).
uint64_t KeySectionBytes(KeyEncoding encoding, uint64_t n);
// Appends the key section of n keys (strictly ascending, all of one table:
// the caller checks) to out.
void AppendKeySection(KeyEncoding encoding, const Key* keys, uint64_t n, std::string* out);

// A read-only view of a key section. Thread-safe after Open (const only).
class KeyIndex {
 public:
  // Over the KeySectionBytes(encoding, n) bytes at `section` (which must
  // outlive the index): checks the keys are strictly ascending (packed: the
  // unary sizes add up, padding bits are zero) and builds the bucket index.
  // Corruption naming the row or bucket otherwise (the caller adds the file).
  [[nodiscard]] Status Open(KeyEncoding encoding, const uint8_t* section, uint64_t n,
                            int table_id);

  KeyEncoding encoding() const { return low_ != nullptr ? KeyEncoding::kPacked : KeyEncoding::kU64; }
  // The i-th key in ascending order (packed: a search of the bucket index).
  Key KeyAt(uint64_t i) const;

  // Index of `key` among the sorted keys, or -1.
  int64_t Find(Key key) const {
    const uint64_t h = KeyHash(key);
    uint32_t lo = starts_[h >> shift_], hi = starts_[(h >> shift_) + 1];
    if (low_ == nullptr) {
      while (hi - lo > 8) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (keys_[mid] < key)
          lo = mid + 1;
        else
          hi = mid + 1;  // keys_[mid] may be the key: keep it in [lo, hi)
      }
      for (; lo < hi; ++lo)
        if (keys_[lo] == key) return lo;
      return -1;
    }
    // Packed: only the low bits are stored, so the table is checked apart.
    if (KeyTable(key) != table_id_) return -1;
    const uint64_t r = h & low_mask_;
    while (hi - lo > 8) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (Low(mid) < r)
        lo = mid + 1;
      else
        hi = mid + 1;
    }
    for (; lo < hi; ++lo)
      if (Low(lo) == r) return lo;
    return -1;
  }
  // The buckets, in key order: bucket b holds rows [Start(b), Start(b + 1)),
  // whose keys are KeyInBucket(b, i).
  uint64_t buckets() const { return starts_.size() - 1; }
  uint64_t Bucket(Key key) const { return KeyHash(key) >> shift_; }
  uint32_t Start(uint64_t b) const { return starts_[b]; }
  Key KeyInBucket(uint64_t b, uint64_t i) const {
    return low_ == nullptr ? keys_[i] : MakeKey(table_id_, b << low_bits_ | Low(i));
  }

  // Staged lookups: the bucket entry, then the key bits it points at. The
  // latter returns the bucket's first row (or rows when the bucket is past
  // the end) so the caller can prefetch that row too: with about one key a
  // bucket it is usually key's.
  void PrefetchBucket(Key key) const { __builtin_prefetch(&starts_[Bucket(key)]); }
  uint64_t PrefetchKeys(Key key) const {
    const uint32_t first = starts_[Bucket(key)];
    if (low_ == nullptr)
      __builtin_prefetch(keys_ + first);
    else
      __builtin_prefetch(low_ + (uint64_t{first} * low_bits_ >> 3));
    return first;
  }

 private:
  // The stored low bits of key i (an unaligned 8-byte load: the section
  // keeps a zero word after the last key's bits, so it never reads past it).
  uint64_t Low(uint64_t i) const {
    const uint64_t bit = i * low_bits_;
    uint64_t w;
    std::memcpy(&w, low_ + (bit >> 3), 8);
    return (w >> (bit & 7)) & low_mask_;
  }
  void BuildPlainBuckets(uint64_t n);

  const Key* keys_ = nullptr;     // kU64
  const uint8_t* low_ = nullptr;  // kPacked: the packed low bits
  int low_bits_ = 0;
  uint64_t low_mask_ = 0;
  int table_id_ = 0;
  int shift_ = kKeyHashBits - 1;
  std::vector<uint32_t> starts_{0, 0, 0};  // bucket b's keys are [starts_[b], starts_[b+1])
};

}  // namespace ctrps::worker::serve
