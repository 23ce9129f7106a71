// Feature hashing: every (field, value) pair becomes a 64-bit Key whose
// table id (top 8 bits) is the field index and whose low 56 bits hash the
// value with a per-field seed. Keys are persisted in checkpoints and
// exports: never change these functions or the tags below, or a trained
// model's rows no longer match its features.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/check.h"
#include "common/hash.h"
#include "common/keys.h"

namespace ctrps::worker {

// Namespaces for integer-valued features, so that e.g. the raw value 1 and
// log bucket 1 of the same field get different keys.
enum class IntKeyKind : uint64_t {
  kRawValue = 1,   // the integer itself (Criteo x <= 2, Avazu hour/weekday)
  kLogBucket = 2,  // floor(ln(x)^2) of a Criteo integer x > 2
  kScaled = 3,     // the one key of a field in Criteo "scale" mode
};

// Thread-safe after construction (read-only).
class FeatureHasher {
 public:
  // hash_seed changes every key; 0 is the default for all configs.
  FeatureHasher(int num_fields, uint64_t hash_seed) {
    CHECK(num_fields > 0 && num_fields <= kMaxTables) << "num_fields " << num_fields;
    seeds_.resize(num_fields);
    for (int f = 0; f < num_fields; ++f) {
      seeds_[f] = Mix64(hash_seed ^ Mix64(0x243f6a8885a308d3ULL + static_cast<uint64_t>(f)));
    }
  }

  int num_fields() const { return static_cast<int>(seeds_.size()); }

  // The key of an absent/empty value: hash bits all zero. No real value
  // maps there (see NonMissing), so "missing" is always its own feature.
  static Key MissingKey(int field) { return MakeKey(field, 0); }

  Key TokenKey(int field, const char* data, size_t len) const {
    return MakeKey(field, NonMissing(HashBytes(data, len, seeds_[field])));
  }
  Key TokenKey(int field, std::string_view token) const {
    return TokenKey(field, token.data(), token.size());
  }

  Key IntKey(int field, IntKeyKind kind, int64_t value) const {
    char bytes[8];
    std::memcpy(bytes, &value, 8);
    uint64_t seed = Mix64(seeds_[field] + static_cast<uint64_t>(kind));
    return MakeKey(field, NonMissing(HashBytes(bytes, 8, seed)));
  }

 private:
  static uint64_t NonMissing(uint64_t h) { return (h & kKeyHashMask) == 0 ? 1 : h; }
  std::vector<uint64_t> seeds_;
};

}  // namespace ctrps::worker

namespace ctrps::worker {

// The key of a categorical token from a hex-ish vocabulary (Criteo, Avazu):
// ASCII letters are lower-cased first, so "3A171ECB" and "3a171ecb" are one
// feature; any length is accepted. Returns false, with *bad_offset set, if
// the token holds a control byte (0x00-0x1f or 0x7f). Empty tokens are the
// caller's business (they are the missing key).
bool CategoricalKey(const FeatureHasher& hasher, int field, std::string_view token, Key* key,
                    size_t* bad_offset);

}  // namespace ctrps::worker
