#include "storage/shard_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crc32c.h"
#include "common/parallel.h"

namespace ctrps::storage {
namespace {

constexpr char kMagic[8] = {'C', 'T', 'R', 'P', 'S', 'H', 'D', '1'};
constexpr char kEndMagic[8] = {'C', 'T', 'R', 'P', 'S', 'E', 'N', 'D'};
constexpr uint32_t kVersion = 1;             // rows only
constexpr uint32_t kVersionWithPolicy = 2;   // rows and a policy section
constexpr uint32_t kPolicySection = 0xFFFFFFFFu;  // in a chunk header's table index field
constexpr size_t kMaxPolicyBytes = size_t{1} << 31;
constexpr size_t kChunkRows = 4096;
constexpr size_t kTrailerBytes = 24;

template <typename T>
void Put(std::string* s, const T& v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

std::string ShardFileName(uint32_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%04u.rows", shard);
  return buf;
}

// One open shard file with a chunk buffer per table.
struct ShardSetWriter::File {
  std::string path, name;
  uint32_t shard = 0;
  std::FILE* f = nullptr;
  uint32_t crc = 0;
  uint64_t bytes = 0, rows = 0;
  uint64_t synced = 0;  // bytes handed to writeback so far
  struct Pending {
    std::vector<Key> keys;
    std::vector<RowStats> stats;
    std::vector<float> rows;
  };
  std::vector<Pending> pending;  // per table index
  std::vector<uint64_t> table_rows;  // per table index
  std::string policy_state;          // written before the trailer if not empty

  ~File() {
    if (f) std::fclose(f);
  }
  Status Write(const void* p, size_t n) {
    if (n == 0) return Status::OK();
    if (std::fwrite(p, 1, n, f) != n)
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    crc = Crc32c(crc, p, n);
    bytes += n;
    return Status::OK();
  }
  Status FlushChunk(uint32_t table_index) {
    Pending& p = pending[table_index];
    const uint32_t n = static_cast<uint32_t>(p.keys.size());
    if (n == 0) return Status::OK();
    const uint32_t head[2] = {table_index, n};
    RETURN_IF_ERROR(Write(head, sizeof(head)));
    RETURN_IF_ERROR(Write(p.keys.data(), n * sizeof(Key)));
    RETURN_IF_ERROR(Write(p.stats.data(), n * sizeof(RowStats)));
    RETURN_IF_ERROR(Write(p.rows.data(), p.rows.size() * sizeof(float)));
    // Start writing back each 8 MiB as soon as it is written, so the final
    // fsync has little left to wait for (disk writes overlap the scan).
    if (bytes - synced >= (size_t{8} << 20)) {
      if (std::fflush(f) != 0)
        return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
      ::sync_file_range(fileno(f), static_cast<off_t>(synced), static_cast<off_t>(bytes - synced),
                        SYNC_FILE_RANGE_WRITE);
      synced = bytes;
    }
    rows += n;
    table_rows[table_index] += n;
    p.keys.clear();
    p.stats.clear();
    p.rows.clear();
    return Status::OK();
  }
};

static_assert(sizeof(RowStats) == 8, "RowStats is stored raw");

ShardSetWriter::~ShardSetWriter() {
  // An unfinished writer leaves no file that could pass for a whole one.
  for (auto& f : files_) {
    if (f && f->f) {
      std::fclose(f->f);
      f->f = nullptr;
      std::remove(f->path.c_str());
    }
  }
}

StatusOr<std::unique_ptr<ShardSetWriter>> ShardSetWriter::Open(
    const std::string& dir, uint32_t num_virtual_shards, const std::vector<uint32_t>& shards,
    const std::vector<TableSpec>& tables, uint32_t step, uint32_t since_step,
    const std::vector<std::string>& policy_states) {
  if (num_virtual_shards == 0) return Status::InvalidArgument("shard files: 0 virtual shards");
  if (!policy_states.empty() && policy_states.size() != shards.size())
    return Status::InvalidArgument("shard files: " + std::to_string(policy_states.size()) +
                                   " policy states for " + std::to_string(shards.size()) + " shards");
  bool any_policy = false;
  for (const std::string& p : policy_states) {
    if (p.size() > kMaxPolicyBytes) return Status::InvalidArgument("shard files: policy state too large");
    any_policy |= !p.empty();
  }
  std::unique_ptr<ShardSetWriter> w(new ShardSetWriter());
  w->tables_ = tables;
  w->table_index_.assign(kMaxTables, -1);
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i].table_id < 0 || tables[i].table_id >= kMaxTables)
      return Status::InvalidArgument("shard files: bad table id " +
                                     std::to_string(tables[i].table_id));
    w->table_index_[tables[i].table_id] = static_cast<int32_t>(i);
  }
  w->slot_of_shard_.assign(num_virtual_shards, -1);
  std::string header;
  header.append(kMagic, 8);
  Put(&header, any_policy ? kVersionWithPolicy : kVersion);
  const size_t shard_field = header.size();
  Put(&header, uint32_t{0});
  Put(&header, num_virtual_shards);
  Put(&header, static_cast<uint32_t>(tables.size()));
  Put(&header, step);
  Put(&header, since_step);
  for (const TableSpec& t : tables) {
    Put(&header, static_cast<int32_t>(t.table_id));
    Put(&header, static_cast<int32_t>(t.dim));
    Put(&header, static_cast<int32_t>(t.slot_floats));
    Put(&header, uint32_t{0});
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    const uint32_t shard = shards[i];
    if (shard >= num_virtual_shards || w->slot_of_shard_[shard] >= 0)
      return Status::InvalidArgument("shard files: bad or repeated shard " + std::to_string(shard));
    auto file = std::make_unique<File>();
    file->shard = shard;
    file->name = ShardFileName(shard);
    file->path = dir + "/" + file->name;
    file->pending.resize(tables.size());
    file->table_rows.assign(tables.size(), 0);
    if (!policy_states.empty()) file->policy_state = policy_states[i];
    file->f = std::fopen(file->path.c_str(), "wb");
    if (!file->f)
      return Status::IOError("cannot create " + file->path + ": " + std::strerror(errno));
    std::memcpy(&header[shard_field], &shard, sizeof(shard));
    RETURN_IF_ERROR(file->Write(header.data(), header.size()));
    w->slot_of_shard_[shard] = static_cast<int32_t>(w->files_.size());
    w->files_.push_back(std::move(file));
  }
  return w;
}

Status ShardSetWriter::Add(uint32_t shard, int table, Key key, const float* row,
                           const RowStats& stats) {
  if (shard >= slot_of_shard_.size() || slot_of_shard_[shard] < 0)
    return Status::InvalidArgument("shard files: shard " + std::to_string(shard) +
                                   " is not being written");
  if (table < 0 || table >= kMaxTables || table_index_[table] < 0)
    return Status::InvalidArgument("shard files: table " + std::to_string(table) +
                                   " was not declared");
  File& f = *files_[slot_of_shard_[shard]];
  const uint32_t ti = static_cast<uint32_t>(table_index_[table]);
  File::Pending& p = f.pending[ti];
  p.keys.push_back(key);
  p.stats.push_back(stats);
  p.rows.insert(p.rows.end(), row, row + tables_[ti].row_floats());
  if (p.keys.size() >= kChunkRows) return f.FlushChunk(ti);
  return Status::OK();
}

StatusOr<std::vector<ShardFileInfo>> ShardSetWriter::Finish() {
  std::vector<ShardFileInfo> out;
  for (auto& fp : files_) {
    File& f = *fp;
    for (uint32_t ti = 0; ti < tables_.size(); ++ti) RETURN_IF_ERROR(f.FlushChunk(ti));
    if (!f.policy_state.empty()) {
      const uint32_t head[2] = {kPolicySection, static_cast<uint32_t>(f.policy_state.size())};
      RETURN_IF_ERROR(f.Write(head, sizeof(head)));
      RETURN_IF_ERROR(f.Write(f.policy_state.data(), f.policy_state.size()));
    }
    std::string trailer;
    trailer.append(kEndMagic, 8);
    Put(&trailer, f.rows);
    RETURN_IF_ERROR(f.Write(trailer.data(), trailer.size()));
    const uint32_t tail[2] = {f.crc, 0};
    if (std::fwrite(tail, 1, sizeof(tail), f.f) != sizeof(tail) || std::fflush(f.f) != 0 ||
        ::fsync(fileno(f.f)) != 0)
      return Status::IOError("cannot write " + f.path + ": " + std::strerror(errno));
    f.bytes += sizeof(tail);
    const int rc = std::fclose(f.f);
    f.f = nullptr;
    if (rc != 0) return Status::IOError("cannot close " + f.path + ": " + std::strerror(errno));
    ShardFileInfo info{f.shard, f.name, f.bytes, Crc32c(f.crc, tail, sizeof(tail)), f.rows, {}};
    for (size_t ti = 0; ti < tables_.size(); ++ti)
      if (f.table_rows[ti] > 0) info.table_rows.emplace_back(tables_[ti].table_id, f.table_rows[ti]);
    out.push_back(std::move(info));
  }
  return out;
}

namespace {

// One thread's part of WriteStoreShards: its shards, tables from `first`.
StatusOr<std::vector<ShardFileInfo>> WriteShardGroup(const EmbeddingStore& store,
                                                     const std::vector<TableSpec>& tables,
                                                     size_t first, const std::string& dir,
                                                     uint32_t num_virtual_shards,
                                                     const std::vector<uint32_t>& shards,
                                                     uint32_t step, uint32_t since_step) {
  std::vector<std::string> policy(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    ASSIGN_OR_RETURN(policy[i], store.SavePolicyState(shards[i]));
  }
  ASSIGN_OR_RETURN(auto writer, ShardSetWriter::Open(dir, num_virtual_shards, shards, tables, step,
                                                     since_step, policy));
  std::vector<uint8_t> wanted(num_virtual_shards, 0);
  for (uint32_t s : shards) wanted[s] = 1;
  for (size_t i = 0; i < tables.size(); ++i) {
    const TableSpec& t = tables[(first + i) % tables.size()];
    Status add_status;
    RETURN_IF_ERROR(store.ScanShards(
        t.table_id, num_virtual_shards, wanted, [&](Key key, const float* row, const RowStats& st) {
          if (since_step > 0 && st.last_step <= since_step) return true;
          add_status = writer->Add(VirtualShardOf(key, num_virtual_shards), t.table_id, key, row, st);
          return add_status.ok();
        }));
    RETURN_IF_ERROR(add_status);
  }
  return writer->Finish();
}

}  // namespace

StatusOr<std::vector<ShardFileInfo>> WriteStoreShards(const EmbeddingStore& store,
                                                      const std::string& dir,
                                                      uint32_t num_virtual_shards,
                                                      const std::vector<uint32_t>& shards,
                                                      uint32_t step, uint32_t since_step,
                                                      int threads) {
  const std::vector<TableSpec> tables = store.Tables();
  threads = std::max(1, std::min<int>(threads, static_cast<int>(shards.size())));
  // Shards dealt round-robin to the threads; each thread walks the tables
  // from a different one, so they rarely wait on the same table's lock.
  std::vector<std::vector<uint32_t>> groups(threads);
  for (size_t i = 0; i < shards.size(); ++i) groups[i % threads].push_back(shards[i]);
  std::vector<std::vector<ShardFileInfo>> results(threads);
  RETURN_IF_ERROR(ParallelFor(threads, threads, [&](int t) -> Status {
    ASSIGN_OR_RETURN(results[t], WriteShardGroup(store, tables, tables.size() * t / threads, dir,
                                                 num_virtual_shards, groups[t], step, since_step));
    return Status::OK();
  }));
  std::vector<ShardFileInfo> out;
  for (auto& r : results)
    for (auto& f : r) out.push_back(std::move(f));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.shard < b.shard; });
  return out;
}

namespace {

// Reads a shard file through a buffered stream, checking every size.
class ShardReader {
 public:
  explicit ShardReader(std::string path) : path_(std::move(path)) {}
  ~ShardReader() {
    if (f_) std::fclose(f_);
  }
  Status Open() {
    f_ = std::fopen(path_.c_str(), "rb");
    if (!f_) return Status::NotFound("cannot open " + path_ + ": " + std::strerror(errno));
    if (std::fseek(f_, 0, SEEK_END) != 0) return Status::IOError("cannot seek " + path_);
    size_ = static_cast<uint64_t>(std::ftell(f_));
    std::rewind(f_);
    return Status::OK();
  }
  Status Read(void* p, size_t n, const char* what) {
    if (n == 0) return Status::OK();
    if (pos_ + n > size_)
      return Status::Corruption(path_ + ": truncated: " + what + " at byte " +
                                std::to_string(pos_) + " needs " + std::to_string(n) +
                                " bytes, the file has " + std::to_string(size_ - pos_) + " left");
    if (std::fread(p, 1, n, f_) != n)
      return Status::IOError("cannot read " + path_ + ": " + std::strerror(errno));
    crc_ = Crc32c(crc_, p, n);
    pos_ += n;
    return Status::OK();
  }
  Status Bad(const std::string& what) const {
    return Status::Corruption(path_ + ": " + what + " at byte " + std::to_string(pos_));
  }
  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint32_t crc() const { return crc_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0, pos_ = 0;
  uint32_t crc_ = 0;
};

}  // namespace

Status ReadShardFile(const std::string& path, ShardFileHeader* header, const ShardChunkFn& fn,
                     const std::function<Status(const ShardFileHeader&)>& on_header) {
  ShardReader r(path);
  RETURN_IF_ERROR(r.Open());
  char magic[8];
  RETURN_IF_ERROR(r.Read(magic, 8, "the header"));
  if (std::memcmp(magic, kMagic, 8) != 0) return r.Bad("not a ctrps shard file (bad magic)");
  uint32_t h[6];
  RETURN_IF_ERROR(r.Read(h, sizeof(h), "the header"));
  if (h[0] != kVersion && h[0] != kVersionWithPolicy)
    return r.Bad("unsupported shard file version " + std::to_string(h[0]));
  const uint32_t version = h[0];
  ShardFileHeader hd;
  hd.shard = h[1];
  hd.num_virtual_shards = h[2];
  const uint32_t num_tables = h[3];
  hd.step = h[4];
  hd.since_step = h[5];
  if (hd.num_virtual_shards == 0 || hd.shard >= hd.num_virtual_shards)
    return r.Bad("shard " + std::to_string(hd.shard) + " of " +
                 std::to_string(hd.num_virtual_shards) + " is impossible");
  if (num_tables > static_cast<uint32_t>(kMaxTables))
    return r.Bad(std::to_string(num_tables) + " tables is impossible");
  for (uint32_t i = 0; i < num_tables; ++i) {
    int32_t t[4];
    RETURN_IF_ERROR(r.Read(t, sizeof(t), "a table spec"));
    TableSpec spec;
    spec.table_id = t[0];
    spec.dim = t[1];
    spec.slot_floats = t[2];
    if (spec.table_id < 0 || spec.table_id >= kMaxTables || spec.dim < 1 || spec.dim > 65536 ||
        spec.slot_floats < 0 || spec.slot_floats > 4 * 65536)
      return r.Bad("bad table spec (id " + std::to_string(t[0]) + ", dim " + std::to_string(t[1]) +
                   ", slots " + std::to_string(t[2]) + ")");
    hd.tables.push_back(spec);
  }
  if (on_header) RETURN_IF_ERROR(on_header(hd));
  std::vector<Key> keys;
  std::vector<RowStats> stats;
  std::vector<float> rows;
  uint64_t total = 0;
  bool has_policy = false;
  while (true) {
    if (r.size() - r.pos() < kTrailerBytes)
      return r.Bad("truncated: no trailer (" + std::to_string(r.size() - r.pos()) +
                   " bytes left)");
    if (r.size() - r.pos() == kTrailerBytes) break;
    uint32_t head[2];
    RETURN_IF_ERROR(r.Read(head, sizeof(head), "a chunk header"));
    // What the sections may still use: the bytes left before the trailer.
    // (Written as a subtraction from `left` only after checking it cannot
    // go below zero: an unsigned wrap here once let a 57-byte file ask for
    // a 4 GiB policy section.)
    const uint64_t left = r.size() - r.pos();
    if (left < kTrailerBytes)
      return r.Bad("truncated: no trailer after a chunk header (" + std::to_string(left) +
                   " bytes left)");
    const uint64_t body_left = left - kTrailerBytes;
    if (head[0] == kPolicySection && version == kVersionWithPolicy) {
      if (has_policy) return r.Bad("a second policy section");
      if (head[1] == 0 || head[1] > body_left || head[1] > kMaxPolicyBytes)
        return r.Bad("truncated or bad policy section of " + std::to_string(head[1]) + " bytes");
      hd.policy_state.resize(head[1]);
      RETURN_IF_ERROR(r.Read(hd.policy_state.data(), head[1], "the policy section"));
      has_policy = true;
      continue;
    }
    if (has_policy) return r.Bad("rows after the policy section");
    if (head[0] >= hd.tables.size()) return r.Bad("chunk names table index " + std::to_string(head[0]));
    const TableSpec& spec = hd.tables[head[0]];
    const size_t n = head[1];
    const size_t rf = static_cast<size_t>(spec.row_floats());
    if (n == 0 || n > (1u << 24) ||
        n * (sizeof(Key) + sizeof(RowStats) + rf * sizeof(float)) > body_left)
      return r.Bad("truncated or bad chunk of " + std::to_string(n) + " rows");
    keys.resize(n);
    stats.resize(n);
    rows.resize(n * rf);
    RETURN_IF_ERROR(r.Read(keys.data(), n * sizeof(Key), "chunk keys"));
    RETURN_IF_ERROR(r.Read(stats.data(), n * sizeof(RowStats), "chunk row stats"));
    RETURN_IF_ERROR(r.Read(rows.data(), rows.size() * sizeof(float), "chunk rows"));
    for (size_t i = 0; i < n; ++i)
      if (VirtualShardOf(keys[i], hd.num_virtual_shards) != hd.shard)
        return r.Bad("key " + std::to_string(keys[i]) + " does not belong to shard " +
                     std::to_string(hd.shard));
    total += n;
    if (fn) RETURN_IF_ERROR(fn(spec, keys.data(), stats.data(), rows.data(), n));
  }
  char end[8];
  uint64_t count = 0;
  RETURN_IF_ERROR(r.Read(end, 8, "the trailer"));
  if (std::memcmp(end, kEndMagic, 8) != 0) return r.Bad("bad trailer magic");
  RETURN_IF_ERROR(r.Read(&count, sizeof(count), "the trailer"));
  const uint32_t expected = r.crc();
  uint32_t tail[2];
  RETURN_IF_ERROR(r.Read(tail, sizeof(tail), "the trailer"));
  if (tail[0] != expected)
    return Status::Corruption(path + ": checksum mismatch (file says " + std::to_string(tail[0]) +
                              ", contents give " + std::to_string(expected) + ")");
  if (count != total)
    return Status::Corruption(path + ": trailer says " + std::to_string(count) + " rows, found " +
                              std::to_string(total));
  if (header) *header = std::move(hd);
  return Status::OK();
}

Status LoadShardFile(const std::string& path, uint32_t shard, uint32_t num_virtual_shards,
                     EmbeddingStore* store, bool verified) {
  std::vector<int> store_rf(kMaxTables, -1), store_dim(kMaxTables, -1);
  for (const TableSpec& t : store->Tables()) {
    store_rf[t.table_id] = t.row_floats();
    store_dim[t.table_id] = t.dim;
  }
  auto check_header = [&](const TableSpec& spec) -> Status {
    if (store_rf[spec.table_id] < 0)
      return Status::InvalidArgument(path + ": table " + std::to_string(spec.table_id) +
                                     " is not a table of this model");
    if (store_dim[spec.table_id] != spec.dim || store_rf[spec.table_id] != spec.row_floats())
      return Status::InvalidArgument(
          path + ": table " + std::to_string(spec.table_id) + " has rows of dim " +
          std::to_string(spec.dim) + " + " + std::to_string(spec.slot_floats) +
          " optimizer floats; the model's has dim " + std::to_string(store_dim[spec.table_id]) +
          " + " + std::to_string(store_rf[spec.table_id] - store_dim[spec.table_id]));
    return Status::OK();
  };
  auto check = [&](const ShardFileHeader& h) -> Status {
    if (h.shard != shard || h.num_virtual_shards != num_virtual_shards)
      return Status::InvalidArgument(path + ": holds shard " + std::to_string(h.shard) + " of " +
                                     std::to_string(h.num_virtual_shards) + ", expected " +
                                     std::to_string(shard) + " of " +
                                     std::to_string(num_virtual_shards));
    for (const TableSpec& spec : h.tables) RETURN_IF_ERROR(check_header(spec));
    return Status::OK();
  };
  // Verify the whole file (checksum included) before the first row goes in.
  if (!verified) RETURN_IF_ERROR(ReadShardFile(path, nullptr, nullptr, check));
  ShardFileHeader h;
  RETURN_IF_ERROR(ReadShardFile(
      path, &h,
      [&](const TableSpec& spec, const Key* keys, const RowStats* stats, const float* rows,
          size_t n) { return store->Put(spec.table_id, keys, n, rows, stats); },
      check));
  if (h.policy_state.empty()) return Status::OK();
  Status s = store->LoadPolicyState(shard, h.policy_state);
  return s.ok() ? s : s.WithContext(path);
}

}  // namespace ctrps::storage
