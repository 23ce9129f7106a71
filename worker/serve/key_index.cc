#include "worker/serve/key_index.h"

#include <algorithm>

namespace ctrps::worker::serve {
namespace {

constexpr int kMaxBucketBits = 24;  // 64 MiB of bucket index at most

uint64_t Words(uint64_t bits) { return (bits + 63) / 64; }

// Packed section: the unary bucket sizes, then the low bits and one zero word.
uint64_t UnaryWords(uint64_t n, int b) { return Words(n + (uint64_t{1} << b)); }
uint64_t LowWords(uint64_t n, int b) { return Words(n * (kKeyHashBits - b)) + 1; }

uint64_t Word(const uint8_t* p, uint64_t i) {
  uint64_t w;
  std::memcpy(&w, p + 8 * i, 8);
  return w;
}

void SetBit(std::vector<uint64_t>* words, uint64_t bit) { (*words)[bit / 64] |= uint64_t{1} << (bit % 64); }

}  // namespace

int PackedKeyBucketBits(uint64_t n) {
  int bits = 1;
  while (bits < kMaxBucketBits && (uint64_t{1} << bits) < n) ++bits;
  return bits;
}

uint64_t KeySectionBytes(KeyEncoding encoding, uint64_t n) {
  if (encoding == KeyEncoding::kU64) return n * 8;
  const int b = PackedKeyBucketBits(n);
  return 8 * (UnaryWords(n, b) + LowWords(n, b));
}

void AppendKeySection(KeyEncoding encoding, const Key* keys, uint64_t n, std::string* out) {
  if (encoding == KeyEncoding::kU64) {
    out->append(reinterpret_cast<const char*>(keys), n * 8);
    return;
  }
  const int b = PackedKeyBucketBits(n);
  const int low_bits = kKeyHashBits - b;
  const uint64_t buckets = uint64_t{1} << b;
  // Unary: bucket j's size as that many ones, then a zero.
  std::vector<uint64_t> unary(UnaryWords(n, b), 0);
  uint64_t bit = 0, i = 0;
  for (uint64_t j = 0; j < buckets; ++j) {
    for (; i < n && (KeyHash(keys[i]) >> low_bits) == j; ++i) SetBit(&unary, bit++);
    ++bit;
  }
  std::vector<uint64_t> low(LowWords(n, b), 0);
  const uint64_t mask = (uint64_t{1} << low_bits) - 1;
  for (i = 0; i < n; ++i) {
    const uint64_t r = KeyHash(keys[i]) & mask, at = i * low_bits;
    low[at / 64] |= r << (at % 64);
    if (at % 64 + low_bits > 64) low[at / 64 + 1] |= r >> (64 - at % 64);
  }
  out->append(reinterpret_cast<const char*>(unary.data()), unary.size() * 8);
  out->append(reinterpret_cast<const char*>(low.data()), low.size() * 8);
}

void KeyIndex::BuildPlainBuckets(uint64_t n) {
  const int bits = PackedKeyBucketBits(n);
  shift_ = kKeyHashBits - bits;
  starts_.assign((size_t{1} << bits) + 1, 0);
  uint64_t i = 0;
  for (size_t b = 0; b < (size_t{1} << bits); ++b) {
    starts_[b] = static_cast<uint32_t>(i);
    while (i < n && (KeyHash(keys_[i]) >> shift_) == b) ++i;
  }
  starts_.back() = static_cast<uint32_t>(n);
}

Status KeyIndex::Open(KeyEncoding encoding, const uint8_t* section, uint64_t n, int table_id) {
  if (n >= (uint64_t{1} << 32)) return Status::Corruption("more than 2^32 keys");
  table_id_ = table_id;
  if (encoding == KeyEncoding::kU64) {
    keys_ = reinterpret_cast<const Key*>(section);
    low_ = nullptr;
    // The writer guarantees order and table; a hand-made file might not,
    // and lookups rely on both.
    for (uint64_t i = 0; i < n; ++i)
      if (KeyTable(keys_[i]) != table_id || (i > 0 && keys_[i] <= keys_[i - 1]))
        return Status::Corruption("keys not strictly ascending within table " +
                                  std::to_string(table_id) + " at row " + std::to_string(i));
    BuildPlainBuckets(n);
    return Status::OK();
  }
  const int b = PackedKeyBucketBits(n);
  const uint64_t buckets = uint64_t{1} << b, unary_bits = n + buckets;
  keys_ = nullptr;
  low_bits_ = kKeyHashBits - b;
  low_mask_ = (uint64_t{1} << low_bits_) - 1;
  shift_ = low_bits_;
  // Bucket sizes: every zero closes a bucket; n ones and 2^b zeros in all.
  starts_.assign(buckets + 1, 0);
  uint64_t ones = 0, closed = 0;
  for (uint64_t w = 0; w < UnaryWords(n, b); ++w) {
    const uint64_t word = Word(section, w);
    const uint64_t valid = std::min<uint64_t>(64, unary_bits - 64 * w);
    if (valid < 64 && (word >> valid) != 0)
      return Status::Corruption("packed keys: bits set past the bucket sizes (corrupt)");
    for (uint64_t k = 0; k < valid; ++k) {
      if (word >> k & 1) {
        ++ones;
      } else {
        if (closed == buckets || ones > n) break;  // refused below
        starts_[++closed] = static_cast<uint32_t>(ones);
      }
    }
  }
  if (ones != n || closed != buckets)
    return Status::Corruption("packed keys: the bucket sizes hold " + std::to_string(ones) +
                              " keys in " + std::to_string(closed) + " buckets, expected " +
                              std::to_string(n) + " in " + std::to_string(buckets));
  low_ = section + 8 * UnaryWords(n, b);
  const uint64_t low_words = LowWords(n, b), used = n * low_bits_;
  for (uint64_t w = used / 64; w < low_words; ++w) {
    const uint64_t word = Word(low_, w);
    const uint64_t keep = w == used / 64 && used % 64 ? (uint64_t{1} << (used % 64)) - 1 : 0;
    if ((word & ~keep) != 0)
      return Status::Corruption("packed keys: non-zero padding after the last key (corrupt)");
  }
  for (uint64_t j = 0; j < buckets; ++j)
    for (uint64_t i = uint64_t{starts_[j]} + 1; i < starts_[j + 1]; ++i)
      if (Low(i) <= Low(i - 1))
        return Status::Corruption("packed keys not strictly ascending within bucket " +
                                  std::to_string(j) + " at row " + std::to_string(i));
  return Status::OK();
}

Key KeyIndex::KeyAt(uint64_t i) const {
  if (low_ == nullptr) return keys_[i];
  // The last bucket starting at or before i (empty buckets share a start).
  const uint64_t b = static_cast<uint64_t>(
      std::upper_bound(starts_.begin(), starts_.end() - 1, static_cast<uint32_t>(i)) -
      starts_.begin() - 1);
  return KeyInBucket(b, i);
}

}  // namespace ctrps::worker::serve
