#include "ps/wire.h"

#include <algorithm>
#include <cstring>

namespace ctrps::ps {
namespace {

constexpr uint32_t kMagic = 0x31535043;  // "CPS1"

struct Header {
  uint32_t magic;
  uint16_t kind;
  uint16_t reserved;
  uint32_t flags;
  uint32_t step;
  uint32_t num_slices;
  uint32_t blob_bytes;
  uint64_t body_bytes;  // bytes after the header
};
static_assert(sizeof(Header) == 32, "wire header is 32 bytes");

struct SliceHeader {
  int32_t table;
  int32_t width;
  uint64_t n;
  uint32_t has_keys;
  uint32_t has_data;
};
static_assert(sizeof(SliceHeader) == 24, "wire slice header is 24 bytes");

constexpr size_t Pad8(size_t x) { return (x + 7) & ~size_t{7}; }
constexpr uint64_t kMaxKeysPerSlice = uint64_t{1} << 32;
constexpr int kMaxWidth = 1 << 16;

}  // namespace

const char* MessageKindName(MessageKind k) {
  switch (k) {
    case MessageKind::kDeclare: return "declare";
    case MessageKind::kPull: return "pull";
    case MessageKind::kPullReply: return "pull reply";
    case MessageKind::kPush: return "push";
    case MessageKind::kAck: return "ack";
    case MessageKind::kScan: return "scan";
    case MessageKind::kScanChunk: return "scan chunk";
    case MessageKind::kLoad: return "load";
    case MessageKind::kShutdown: return "shutdown";
    case MessageKind::kError: return "error";
    case MessageKind::kCollective: return "collective";
    case MessageKind::kSaveShards: return "save shards";
    case MessageKind::kLoadShards: return "load shards";
    case MessageKind::kStats: return "stats";
    case MessageKind::kRewrite: return "rewrite";
    case MessageKind::kEntryHistogram: return "entry histogram";
    case MessageKind::kPruneEntries: return "prune entries";
    case MessageKind::kDropTables: return "drop tables";
  }
  return "unknown";
}

MessageBuilder::MessageBuilder(MessageKind kind, uint32_t flags, uint32_t step)
    : kind_(kind), flags_(flags), step_(step) {}

size_t MessageBuilder::AddSlice(int table, int width, uint64_t n, bool has_keys, bool has_data) {
  specs_.push_back(Spec{table, width, n, has_keys, has_data});
  return specs_.size() - 1;
}

void MessageBuilder::SetBlob(const void* data, size_t bytes) {
  blob_.assign(static_cast<const char*>(data), bytes);
}

void BufferPool::Put(std::vector<char> buf) {
  const size_t cap = buf.capacity();
  if (cap < min_bytes_ || cap > max_bytes_) return;
  if (spares_.size() < max_buffers_) {
    spares_.push_back(std::move(buf));
    return;
  }
  auto smallest = std::min_element(spares_.begin(), spares_.end(), [](const auto& a, const auto& b) {
    return a.capacity() < b.capacity();
  });
  if (smallest->capacity() < cap) *smallest = std::move(buf);
}

std::vector<char> BufferPool::Get(size_t bytes) {
  if (bytes < min_bytes_) return {};
  auto best = spares_.end();
  // Ranks fitting spares: no fill needed first, then smaller capacity.
  auto better = [bytes](const std::vector<char>& a, const std::vector<char>& b) {
    const bool a_filled = a.size() >= bytes, b_filled = b.size() >= bytes;
    if (a_filled != b_filled) return a_filled;
    return a.capacity() < b.capacity();
  };
  for (auto it = spares_.begin(); it != spares_.end(); ++it)
    if (it->capacity() >= bytes && (best == spares_.end() || better(*it, *best))) best = it;
  if (best == spares_.end()) return {};
  std::vector<char> buf = std::move(*best);
  if (best + 1 != spares_.end()) *best = std::move(spares_.back());
  spares_.pop_back();
  return buf;
}

std::vector<char>* MessageBuilder::Finish(Transport* spares) {
  size_t off = sizeof(Header) + specs_.size() * sizeof(SliceHeader) + Pad8(blob_.size());
  for (Spec& s : specs_) {
    if (s.has_keys) {
      s.keys_offset = off;
      off += s.n * sizeof(Key);
    }
    if (s.has_data) {
      s.data_offset = off;
      s.data_bytes = s.n * s.width * sizeof(float);
      off += Pad8(s.data_bytes);
    }
  }
  if (spares) buf_ = spares->TakeBuffer(off);
  if (buf_.capacity() >= off) {
    // A spare: only its bytes past its old size are zero-filled by resize;
    // every byte the caller does not write is written below.
    buf_.resize(off);
  } else {
    buf_.assign(off, 0);
  }
  Header h{kMagic, static_cast<uint16_t>(kind_), 0, flags_, step_,
           static_cast<uint32_t>(specs_.size()), static_cast<uint32_t>(blob_.size()),
           off - sizeof(Header)};
  std::memcpy(buf_.data(), &h, sizeof(h));
  char* p = buf_.data() + sizeof(Header);
  for (const Spec& s : specs_) {
    SliceHeader sh{s.table, s.width, s.n, s.has_keys, s.has_data};
    std::memcpy(p, &sh, sizeof(sh));
    p += sizeof(sh);
  }
  if (!blob_.empty()) std::memcpy(p, blob_.data(), blob_.size());
  std::memset(p + blob_.size(), 0, Pad8(blob_.size()) - blob_.size());
  for (const Spec& s : specs_)
    if (s.has_data)
      std::memset(buf_.data() + s.data_offset + s.data_bytes, 0, Pad8(s.data_bytes) - s.data_bytes);
  return &buf_;
}

Key* MessageBuilder::keys(size_t i) {
  return reinterpret_cast<Key*>(buf_.data() + specs_[i].keys_offset);
}
float* MessageBuilder::data(size_t i) {
  return reinterpret_cast<float*>(buf_.data() + specs_[i].data_offset);
}

Status DecodeMessage(std::vector<char>* bytes, DecodedMessage* out) {
  const size_t size = bytes->size();
  char* base = bytes->data();
  if (size < sizeof(Header))
    return Status::Corruption("message of " + std::to_string(size) +
                              " bytes is shorter than its 32-byte header");
  Header h;
  std::memcpy(&h, base, sizeof(h));
  if (h.magic != kMagic) return Status::Corruption("message has a bad magic number");
  if (h.kind < 1 || h.kind > static_cast<uint16_t>(MessageKind::kDropTables))
    return Status::Corruption("message has unknown kind " + std::to_string(h.kind));
  if (h.body_bytes != size - sizeof(Header))
    return Status::Corruption("message header says " + std::to_string(h.body_bytes) +
                              " body bytes, received " + std::to_string(size - sizeof(Header)) +
                              " (truncated?)");
  size_t off = sizeof(Header);
  if (h.num_slices > (size - off) / sizeof(SliceHeader))
    return Status::Corruption("message claims " + std::to_string(h.num_slices) +
                              " slices, more than its size allows");
  out->kind = static_cast<MessageKind>(h.kind);
  out->flags = h.flags;
  out->step = h.step;
  out->slices.assign(h.num_slices, WireSlice{});
  const char* slice_headers = base + off;
  off += h.num_slices * sizeof(SliceHeader);
  if (h.blob_bytes > size - off)
    return Status::Corruption("message blob of " + std::to_string(h.blob_bytes) +
                              " bytes overruns the message");
  out->blob = base + off;
  out->blob_bytes = h.blob_bytes;
  off += Pad8(h.blob_bytes);
  for (uint32_t i = 0; i < h.num_slices; ++i) {
    SliceHeader sh;
    std::memcpy(&sh, slice_headers + i * sizeof(SliceHeader), sizeof(sh));
    auto where = [i] { return "message slice " + std::to_string(i) + ": "; };
    if (sh.table < 0 || sh.table >= kMaxTables || sh.width < 0 || sh.width > kMaxWidth ||
        sh.n > kMaxKeysPerSlice || sh.has_keys > 1 || sh.has_data > 1)
      return Status::Corruption(where() + "bad header (table " + std::to_string(sh.table) +
                                ", width " + std::to_string(sh.width) + ", n " +
                                std::to_string(sh.n) + ")");
    WireSlice& s = out->slices[i];
    s.table = sh.table;
    s.width = sh.width;
    s.n = sh.n;
    if (sh.has_keys) {
      const size_t need = sh.n * sizeof(Key);
      if (off > size || need > size - off)
        return Status::Corruption(where() + "keys overrun the message (truncated?)");
      s.keys = reinterpret_cast<const Key*>(base + off);
      off += need;
    }
    if (sh.has_data) {
      const size_t need = Pad8(sh.n * sh.width * sizeof(float));
      if (off > size || need > size - off)
        return Status::Corruption(where() + "data overruns the message (truncated?)");
      s.data = reinterpret_cast<float*>(base + off);
      off += need;
    }
  }
  if (off != size)
    return Status::Corruption("message has " + std::to_string(size - off) +
                              " trailing bytes after its slices");
  return Status::OK();
}

std::vector<char> TextMessage(MessageKind kind, uint32_t step, const std::string& text) {
  MessageBuilder b(kind, 0, step);
  b.SetBlob(text.data(), text.size());
  b.Finish();
  return b.Take();
}

}  // namespace ctrps::ps

namespace ctrps::ps {
namespace {
template <typename T>
void PutRaw(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
}  // namespace

std::string EncodeShardFiles(const std::vector<storage::ShardFileInfo>& files) {
  std::string b;
  PutRaw(&b, static_cast<uint32_t>(files.size()));
  for (const auto& f : files) {
    PutRaw(&b, f.shard);
    PutRaw(&b, f.crc32);
    PutRaw(&b, f.bytes);
    PutRaw(&b, f.rows);
    PutRaw(&b, static_cast<uint32_t>(f.table_rows.size()));
    PutRaw(&b, uint32_t{0});
    for (const auto& [table, rows] : f.table_rows) {
      PutRaw(&b, static_cast<int32_t>(table));
      PutRaw(&b, uint32_t{0});
      PutRaw(&b, rows);
    }
  }
  return b;
}

Status DecodeShardFiles(const char* blob, size_t bytes, std::vector<storage::ShardFileInfo>* files) {
  size_t pos = 0;
  auto get = [&](void* out, size_t n) {
    if (pos + n > bytes) return false;
    std::memcpy(out, blob + pos, n);
    pos += n;
    return true;
  };
  const Status bad = Status::Corruption("malformed shard-file list in a save-shards reply");
  uint32_t count = 0;
  if (!get(&count, 4) || count > (1u << 20)) return bad;
  for (uint32_t i = 0; i < count; ++i) {
    storage::ShardFileInfo f;
    uint32_t tables = 0, pad = 0;
    if (!get(&f.shard, 4) || !get(&f.crc32, 4) || !get(&f.bytes, 8) || !get(&f.rows, 8) ||
        !get(&tables, 4) || !get(&pad, 4) || tables > static_cast<uint32_t>(kMaxTables))
      return bad;
    for (uint32_t t = 0; t < tables; ++t) {
      int32_t table = 0;
      uint64_t rows = 0;
      if (!get(&table, 4) || !get(&pad, 4) || !get(&rows, 8)) return bad;
      f.table_rows.emplace_back(table, rows);
    }
    f.name = storage::ShardFileName(f.shard);
    files->push_back(std::move(f));
  }
  if (pos != bytes) return bad;
  return Status::OK();
}

namespace {

// TableStats' counters in declaration order: the wire order of kStats.
constexpr uint64_t storage::TableStats::*kStatFields[] = {
    &storage::TableStats::rows,          &storage::TableStats::bytes,
    &storage::TableStats::lookups,       &storage::TableStats::created,
    &storage::TableStats::dram_rows,     &storage::TableStats::dram_hits,
    &storage::TableStats::dram_misses,   &storage::TableStats::evictions,
    &storage::TableStats::writebacks,    &storage::TableStats::admitted,
    &storage::TableStats::rejected_lookups, &storage::TableStats::dropped_updates,
    &storage::TableStats::evicted_stale, &storage::TableStats::evicted_rare,
};
constexpr size_t kStatBytes = 8 + sizeof(kStatFields) / sizeof(kStatFields[0]) * 8;
// A counter added to TableStats must be added above (and to AddTableStats).
static_assert(sizeof(storage::TableStats) == kStatBytes, "kStatFields misses a TableStats field");

}  // namespace

std::string EncodeTableStats(const std::vector<storage::TableStats>& tables) {
  std::string b;
  PutRaw(&b, static_cast<uint32_t>(tables.size()));
  PutRaw(&b, uint32_t{0});
  for (const storage::TableStats& t : tables) {
    PutRaw(&b, static_cast<int32_t>(t.table_id));
    PutRaw(&b, uint32_t{0});
    for (auto field : kStatFields) PutRaw(&b, t.*field);
  }
  return b;
}

Status DecodeTableStats(const char* blob, size_t bytes, std::vector<storage::TableStats>* tables) {
  const Status bad = Status::Corruption("malformed table list in a stats reply (" +
                                        std::to_string(bytes) + " bytes)");
  uint32_t head[2];
  if (bytes < sizeof(head)) return bad;
  std::memcpy(head, blob, sizeof(head));
  if (head[0] > static_cast<uint32_t>(kMaxTables) || bytes != sizeof(head) + head[0] * kStatBytes)
    return bad;
  const char* p = blob + sizeof(head);
  for (uint32_t i = 0; i < head[0]; ++i, p += kStatBytes) {
    storage::TableStats t;
    int32_t id;
    std::memcpy(&id, p, 4);
    t.table_id = id;
    for (size_t f = 0; f < sizeof(kStatFields) / sizeof(kStatFields[0]); ++f)
      std::memcpy(&(t.*kStatFields[f]), p + 8 + 8 * f, 8);
    tables->push_back(t);
  }
  return Status::OK();
}

}  // namespace ctrps::ps
