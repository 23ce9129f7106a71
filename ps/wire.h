// The byte layout of parameter-server messages: a fixed header with sizes,
// a table of slices, an optional blob, then each slice's keys and floats.
// Every offset is 8-byte aligned. Decoding checks every size against the
// bytes received, so a truncated or malformed message is a Corruption
// Status, never a crash. Persisted on the wire: never renumber kinds.
//
//   header   32 bytes: magic, kind, flags, step, num_slices, blob_bytes, body_bytes
//   slices   24 bytes each: table, width, n, has_keys, has_data
//   blob     blob_bytes, padded to 8
//   payload  per slice: n keys (u64) if has_keys, then n*width floats if has_data (padded to 8)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "ps/transport.h"
#include "storage/shard_file.h"

namespace ctrps::ps {

enum class MessageKind : uint16_t {
  kDeclare = 1,    // blob: TableConfig[]                 -> kAck
  kPull = 2,       // slices with keys; flags: training     -> kPullReply (slices with data)
  kPullReply = 3,
  kPush = 4,       // slices with keys and gradients, step  -> kAck (when applied)
  kAck = 5,
  kScan = 6,       // one slice header (table)              -> kScanChunk ... (flags: last)
  kScanChunk = 7,  // slices with keys and rows
  kLoad = 8,       // slices with keys and rows             -> kAck
  kShutdown = 9,   // this worker is done                   -> no reply
  kError = 10,     // blob: the message of a failed request
  kCollective = 11,
  kSaveShards = 12,  // blob: u32 step, u32 since_step, dir     -> kAck (blob: ShardFileRecords)
  kLoadShards = 13,  // blob: directories separated by '\n'     -> kAck
  kStats = 14,       // no body                                 -> kAck (blob: TableStats list)
  kRewrite = 15,     // blob: ps/table_rewrite.h EncodeRewrite   -> kAck
  kEntryHistogram = 16,  // blob: ps/entry_select.h request    -> kAck (blob: 65536 x u64)
  kPruneEntries = 17,    // blob: ps/entry_select.h request    -> kAck (blob: u64 zeroed)
  kDropTables = 18,      // blob: the table ids, decimal, ' '-separated -> kAck
};

// The shard files a server wrote, as its kSaveShards reply blob: u32 count,
// then per file {u32 shard, u32 crc32, u64 bytes, u64 rows, u32 tables,
// u32 0, tables x {i32 table, u32 0, u64 rows}}.
std::string EncodeShardFiles(const std::vector<storage::ShardFileInfo>& files);
[[nodiscard]] Status DecodeShardFiles(const char* blob, size_t bytes,
                                      std::vector<storage::ShardFileInfo>* files);
// A server's per-table store counters (summed over its shards), as its
// kStats reply blob: u32 count, u32 0, then per table {i32 table, u32 0,
// 14 x u64 in TableStats' declaration order}.
std::string EncodeTableStats(const std::vector<storage::TableStats>& tables);
[[nodiscard]] Status DecodeTableStats(const char* blob, size_t bytes,
                                      std::vector<storage::TableStats>* tables);
const char* MessageKindName(MessageKind k);

inline constexpr uint32_t kFlagTraining = 1;
inline constexpr uint32_t kFlagLast = 2;

// A decoded slice points into the message buffer (valid while it lives).
struct WireSlice {
  int32_t table = 0;
  int32_t width = 0;
  uint64_t n = 0;
  const Key* keys = nullptr;   // null unless has_keys
  float* data = nullptr;       // null unless has_data
};

struct DecodedMessage {
  MessageKind kind = MessageKind::kError;
  uint32_t flags = 0;
  uint32_t step = 0;
  std::vector<WireSlice> slices;
  const char* blob = nullptr;
  size_t blob_bytes = 0;
};

// Spare message buffers (payloads sent or received and no longer needed),
// kept so that the next large message reuses their memory instead of
// allocating, zero-filling and page-faulting a new buffer. Keeps the
// `max_buffers` largest of those offered whose capacity is in
// [min_bytes, max_bytes]. A spare keeps its size(): its first size() bytes
// are initialised (stale contents), so resizing it to no more than that
// writes nothing. Not thread-safe (the transports guard theirs with a lock).
class BufferPool {
 public:
  explicit BufferPool(size_t max_buffers = 4, size_t min_bytes = size_t{16} << 10,
                      size_t max_bytes = size_t{32} << 20)
      : max_buffers_(max_buffers), min_bytes_(min_bytes), max_bytes_(max_bytes) {}
  void Put(std::vector<char> buf);
  // A spare with capacity >= bytes, removed from the pool: preferably one
  // whose size() is already >= bytes (nothing to fill), then the smallest
  // capacity. An empty vector when none fits or bytes < min_bytes (small
  // buffers are cheap to allocate).
  std::vector<char> Get(size_t bytes);
  size_t spares() const { return spares_.size(); }

 private:
  size_t max_buffers_, min_bytes_, max_bytes_;
  std::vector<std::vector<char>> spares_;
};

// Builds a message: declare every slice (and the blob) first, then Finish
// allocates the buffer; write keys and data through the returned pointers.
class MessageBuilder {
 public:
  MessageBuilder(MessageKind kind, uint32_t flags, uint32_t step);
  // Returns the slice's index.
  size_t AddSlice(int table, int width, uint64_t n, bool has_keys, bool has_data);
  void SetBlob(const void* data, size_t bytes);
  // Lays out the buffer; after this, keys(i)/data(i) point into it. Without
  // `spares` the buffer is new and zeroed. With a transport, the buffer may
  // be one of its spares (Transport::TakeBuffer), not cleared: Finish writes
  // the header, slice table, blob and padding, and the caller must write
  // every slice's keys and data.
  std::vector<char>* Finish(Transport* spares = nullptr);
  Key* keys(size_t i);
  float* data(size_t i);
  std::vector<char> Take() { return std::move(buf_); }

 private:
  struct Spec {
    int32_t table, width;
    uint64_t n;
    bool has_keys, has_data;
    size_t keys_offset = 0, data_offset = 0, data_bytes = 0;
  };
  MessageKind kind_;
  uint32_t flags_, step_;
  std::vector<Spec> specs_;
  std::string blob_;
  std::vector<char> buf_;
};

// Checks and decodes `bytes` (which must stay alive and unmoved while `out`
// is used). Data pointers are writable so replies can be filled in place.
[[nodiscard]] Status DecodeMessage(std::vector<char>* bytes, DecodedMessage* out);

// A one-slice-free message whose blob is `text` (errors, acks).
std::vector<char> TextMessage(MessageKind kind, uint32_t step, const std::string& text);

}  // namespace ctrps::ps
