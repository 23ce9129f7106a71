// OnnxVocabulary (onnx_export.h): independent of libonnx, so tools can map
// keys for an exported graph in any build.
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"
#include "worker/train/model_io.h"

namespace ctrps::worker::serve {
namespace {

constexpr char kVocabMagic[8] = {'C', 'T', 'R', 'P', 'S', 'V', 'O', 'C'};

template <typename T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

Status OnnxVocabulary::Write(const std::string& path, const std::vector<std::vector<Key>>& keys) {
  std::string s(kVocabMagic, 8);
  Put<uint32_t>(&s, 1);
  Put<uint32_t>(&s, static_cast<uint32_t>(keys.size()));
  uint64_t base = 1;  // row 0 is the zero row of unknown keys
  for (const auto& k : keys) {
    Put<uint64_t>(&s, k.size());
    Put<uint64_t>(&s, base);
    base += k.size();
  }
  for (const auto& k : keys) s.append(reinterpret_cast<const char*>(k.data()), k.size() * 8);
  Put<uint32_t>(&s, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()),
                                                static_cast<uInt>(s.size()))));
  return WriteWholeFile(path, s);
}

StatusOr<OnnxVocabulary> OnnxVocabulary::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, ReadFileToString(path));
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  if (s.size() < 20 || std::memcmp(s.data(), kVocabMagic, 8) != 0)
    return bad("not a ctrps vocabulary file");
  uint32_t crc, version, F;
  std::memcpy(&crc, s.data() + s.size() - 4, 4);
  if (crc != static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()),
                                         static_cast<uInt>(s.size() - 4))))
    return bad("checksum mismatch (the file is corrupt)");
  std::memcpy(&version, s.data() + 8, 4);
  std::memcpy(&F, s.data() + 12, 4);
  if (version != 1) return bad("version " + std::to_string(version) + ", expected 1");
  if (s.size() < 16 + 16 * static_cast<size_t>(F) + 4) return bad("truncated");
  OnnxVocabulary v;
  size_t pos = 16 + 16 * static_cast<size_t>(F), total = 0;
  for (uint32_t f = 0; f < F; ++f) {
    uint64_t count, base;
    std::memcpy(&count, s.data() + 16 + 16 * f, 8);
    std::memcpy(&base, s.data() + 24 + 16 * f, 8);
    if (pos + count * 8 + 4 > s.size())
      return bad("truncated key list of field " + std::to_string(f));
    if (base != 1 + total) return bad("field " + std::to_string(f) + " has a wrong base");
    std::vector<Key> keys(count);
    std::memcpy(keys.data(), s.data() + pos, count * 8);
    pos += count * 8;
    total += count;
    v.bases_.push_back(base);
    v.keys_.push_back(std::move(keys));
  }
  if (pos + 4 != s.size()) return bad("trailing bytes");
  return v;
}

int64_t OnnxVocabulary::RowIndex(int field, Key key) const {
  const std::vector<Key>& k = keys_[field];
  auto it = std::lower_bound(k.begin(), k.end(), key);
  if (it == k.end() || *it != key) return 0;
  return static_cast<int64_t>(bases_[field] + (it - k.begin()));
}

void OnnxVocabulary::MapBatch(const Batch& batch, std::vector<int64_t>* row_index,
                              std::vector<float>* value) const {
  const int F = num_fields();
  const size_t n = static_cast<size_t>(batch.size()) * F;
  row_index->resize(n);
  for (size_t i = 0; i < n; ++i) (*row_index)[i] = RowIndex(static_cast<int>(i % F), batch.keys[i]);
  value->assign(batch.values.begin(), batch.values.begin() + n);
}

}  // namespace ctrps::worker::serve
