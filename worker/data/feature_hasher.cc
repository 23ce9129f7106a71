#include "worker/data/feature_hasher.h"

#include <cstring>
#include <string>

#include "worker/data/text_util.h"

namespace ctrps::worker {

bool CategoricalKey(const FeatureHasher& hasher, int field, std::string_view token, Key* key,
                    size_t* bad_offset) {
  constexpr size_t kStackBytes = 64;
  char stack[kStackBytes];
  std::string heap;
  char* out = stack;
  if (token.size() > kStackBytes) {
    heap.resize(token.size());
    out = heap.data();
  }
  // 8 bytes at a time while no control byte shows up; the byte loop below
  // finishes the tail and pinpoints a bad byte.
  size_t i = 0;
  for (; i + 8 <= token.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, token.data() + i, 8);
    if (HasControlByte(w)) break;
    w = LowerAsciiBytes(w);
    std::memcpy(out + i, &w, 8);
  }
  for (; i < token.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(token[i]);
    if (IsControlByte(c)) {
      *bad_offset = i;
      return false;
    }
    out[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  *key = hasher.TokenKey(field, out, token.size());
  return true;
}

}  // namespace ctrps::worker
