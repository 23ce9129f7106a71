// Encoding of the admission/eviction state of a shard (admission_state.h).
#include "storage/admission_state.h"

#include <cstring>

namespace ctrps::storage::policy_state {
namespace {

constexpr char kStateMagic[8] = {'C', 'T', 'R', 'P', 'P', 'O', 'L', '1'};

template <typename T>
void Append(std::string* s, const T& v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Reads fixed-size fields from a blob, failing cleanly past its end.
class BlobReader {
 public:
  explicit BlobReader(const std::string& b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    return Bytes(v, sizeof(T));
  }
  bool Bytes(void* p, size_t n) {
    if (n > b_.size() - pos_) return false;
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t left() const { return b_.size() - pos_; }

 private:
  const std::string& b_;
  size_t pos_ = 0;
};

}  // namespace

void AppendStateHeader(std::string* out, uint32_t num_virtual_shards, uint32_t shard,
                       uint32_t num_tables) {
  out->append(kStateMagic, 8);
  Append(out, num_virtual_shards);
  Append(out, shard);
  Append(out, num_tables);
  Append(out, uint32_t{0});
}

void AppendTableState(std::string* out, int table_id, const AdmissionOptions& a,
                      const ShardPolicy& sp) {
  Append(out, static_cast<int32_t>(table_id));
  Append(out, a.min_seen);
  Append(out, a.probability);
  Append(out, static_cast<uint64_t>(sp.sketch ? sp.sketch->bytes() : 0));
  Append(out, sp.calls);
  Append(out, sp.last_step);
  Append(out, sp.last_evict_step);
  for (uint64_t c : {sp.admitted, sp.rejected_lookups, sp.dropped_updates, sp.evicted_stale,
                     sp.evicted_rare})
    Append(out, c);
  if (sp.sketch) out->append(reinterpret_cast<const char*>(sp.sketch->data()), sp.sketch->bytes());
}

StatusOr<std::vector<TableStateRecord>> DecodeShardState(const std::string& blob,
                                                         uint32_t num_virtual_shards,
                                                         uint32_t shard) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption("policy state of virtual shard " + std::to_string(shard) + ": " + what);
  };
  BlobReader r(blob);
  char magic[8];
  uint32_t head[4];
  if (!r.Bytes(magic, 8) || std::memcmp(magic, kStateMagic, 8) != 0) return bad("bad magic");
  if (!r.Bytes(head, sizeof(head))) return bad("truncated header");
  if (head[0] != num_virtual_shards || head[1] != shard)
    return bad("written for shard " + std::to_string(head[1]) + " of " + std::to_string(head[0]) +
               ", not " + std::to_string(shard) + " of " + std::to_string(num_virtual_shards));
  std::vector<TableStateRecord> out;
  for (uint32_t i = 0; i < head[2]; ++i) {
    TableStateRecord e;
    uint64_t sketch_bytes;
    ShardCounters& c = e.counters;
    if (!r.Get(&e.table_id) || !r.Get(&e.min_seen) || !r.Get(&e.probability) ||
        !r.Get(&sketch_bytes) || !r.Get(&c.calls) || !r.Get(&c.last_step) ||
        !r.Get(&c.last_evict_step) || !r.Get(&c.admitted) || !r.Get(&c.rejected_lookups) ||
        !r.Get(&c.dropped_updates) || !r.Get(&c.evicted_stale) || !r.Get(&c.evicted_rare))
      return bad("truncated table entry " + std::to_string(i));
    if (sketch_bytes > r.left()) return bad("truncated sketch of table " + std::to_string(e.table_id));
    e.sketch.resize(sketch_bytes);
    r.Bytes(e.sketch.data(), sketch_bytes);
    out.push_back(std::move(e));
  }
  if (r.left() != 0) return bad(std::to_string(r.left()) + " bytes after the last table");
  return out;
}

}  // namespace ctrps::storage::policy_state
