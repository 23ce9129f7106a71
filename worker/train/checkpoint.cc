#include "worker/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/crc32c.h"
#include "storage/shard_file.h"
#include "worker/train/model_io.h"

namespace ctrps::worker {
namespace fs = std::filesystem;
namespace {

// 2: the manifest carries its own checksum (manifest_crc32c). Version 1
// manifests (without it) are still read.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kFormatVersionWithoutChecksum = 1;
// manifest_crc32c: field 19, wire type 5 (fixed32), as a varint tag.
constexpr unsigned char kManifestCrcTag[2] = {0x9d, 0x01};
constexpr size_t kManifestCrcBytes = 6;
constexpr char kTmpSuffix[] = ".tmp";
constexpr char kOldSuffix[] = ".old";
constexpr char kStorePathName[] = "STORE_PATH";
// A manifest lists a few files per shard: far below this.
constexpr size_t kMaxManifestBytes = size_t{64} << 20;

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

Status WriteSynced(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
            ::fsync(fileno(f)) == 0;
  const int saved = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(path.c_str());
    return Status::IOError("cannot write " + path + ": " + std::strerror(saved ? saved : errno));
  }
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::IOError("cannot open " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot fsync " + dir + ": " + std::strerror(errno));
  return Status::OK();
}

// Size and crc32 of a file, read in 1 MiB blocks.
Status FileCrc32c(const std::string& path, uint64_t* size, uint32_t* crc) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("missing file " + path);
  std::vector<char> buf(1 << 20);
  uint32_t c = 0;
  uint64_t n = 0;
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    c = Crc32c(c, buf.data(), got);
    n += got;
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) return Status::IOError("cannot read " + path);
  *size = n;
  *crc = c;
  return Status::OK();
}

Status VerifyOne(const std::string& dir, const ckpt::CheckpointManifest& m) {
  const std::string name = fs::path(dir).filename().string();
  std::set<std::string> listed;
  uint32_t shards = 0;
  for (const ckpt::FileEntry& e : m.files()) {
    if (e.path().empty() || e.path().find('/') != std::string::npos || e.path() == "..")
      return Status::Corruption(name + ": manifest lists a bad path '" + e.path() + "'");
    listed.insert(e.path());
    const std::string path = dir + "/" + e.path();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      return Status::Corruption(name + ": file " + e.path() + " listed in the manifest is missing");
    const uint64_t size = fs::file_size(path, ec);
    if (ec || size != e.bytes())
      return Status::Corruption(name + ": file " + e.path() + " has " + std::to_string(size) +
                                " bytes, the manifest says " + std::to_string(e.bytes()) +
                                " (truncated or overwritten)");
    if (e.kind() == ckpt::FileEntry::SHARD) {
      ++shards;
      // The shard reader checks the structure and the file's own checksum.
      storage::ShardFileHeader h;
      Status s = storage::ReadShardFile(path, &h, nullptr);
      if (!s.ok()) return Status::Corruption(name + ": " + s.message());
      if (h.shard != e.index() || h.num_virtual_shards != m.virtual_shards())
        return Status::Corruption(name + ": " + e.path() + " holds shard " +
                                  std::to_string(h.shard) + " of " +
                                  std::to_string(h.num_virtual_shards));
    }
    uint64_t n = 0;
    uint32_t crc = 0;
    RETURN_IF_ERROR(FileCrc32c(path, &n, &crc));
    if (crc != e.crc32())
      return Status::Corruption(name + ": file " + e.path() + " fails its checksum (crc32 " +
                                std::to_string(crc) + ", manifest " + std::to_string(e.crc32()) +
                                "): bit flips or a partial write");
  }
  if (shards != m.virtual_shards())
    return Status::Corruption(name + ": manifest lists " + std::to_string(shards) +
                              " shard files for " + std::to_string(m.virtual_shards()) +
                              " virtual shards (a shard is missing)");
  bool has_dense = false;
  for (const auto& e : m.files()) has_dense |= e.kind() == ckpt::FileEntry::DENSE;
  if (!has_dense) return Status::Corruption(name + ": manifest lists no dense file");
  return Status::OK();
}

}  // namespace

Status CheckpointOptions::Validate() const {
  if (every_steps < 0) return Status::InvalidArgument("checkpoint every_steps must be >= 0");
  if (every_seconds < 0) return Status::InvalidArgument("checkpoint every_minutes must be >= 0");
  if (keep_last < 1) return Status::InvalidArgument("checkpoint keep_last must be >= 1");
  if (full_every < 1) return Status::InvalidArgument("checkpoint full_every must be >= 1");
  return Status::OK();
}

std::string CheckpointName(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "ckpt-%010lld", static_cast<long long>(step));
  return buf;
}

int64_t CheckpointStep(const std::string& name) {
  if (name.size() != 15 || name.compare(0, 5, "ckpt-") != 0) return -1;
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

StatusOr<ckpt::FileEntry> WriteCheckpointFile(const std::string& dir, const std::string& name,
                                              const std::string& bytes, ckpt::FileEntry::Kind kind,
                                              uint32_t index) {
  RETURN_IF_ERROR(WriteSynced(dir + "/" + name, bytes));
  ckpt::FileEntry e;
  e.set_path(name);
  e.set_bytes(bytes.size());
  e.set_crc32(Crc32c(0, bytes.data(), bytes.size()));
  e.set_kind(kind);
  e.set_index(index);
  return e;
}

Status CommitCheckpoint(const std::string& tmp_dir, const std::string& final_dir,
                        const ckpt::CheckpointManifest& manifest) {
  ckpt::CheckpointManifest m = manifest;
  m.set_format_version(kFormatVersion);
  m.clear_manifest_crc32c();
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return Status::Internal("cannot serialise the manifest");
  // The checksum field goes last, over the bytes before it (a protobuf
  // parser reads the concatenation as one message).
  const uint32_t crc = Crc32c(0, bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(kManifestCrcTag), sizeof(kManifestCrcTag));
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  RETURN_IF_ERROR(WriteSynced(tmp_dir + "/" + kCheckpointManifestName, bytes));
  RETURN_IF_ERROR(SyncDir(tmp_dir));
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    // A checkpoint of this step exists (a resumed run repeating it): the
    // new one replaces it. Move the old one aside first so that a crash in
    // between leaves one whole copy.
    const std::string old = final_dir + kOldSuffix;
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    if (ec) return Status::IOError("cannot move aside " + final_dir + ": " + ec.message());
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return Status::IOError("cannot rename " + tmp_dir + " to " + final_dir + ": " + ec.message());
  fs::remove_all(final_dir + kOldSuffix, ec);
  return SyncDir(fs::path(final_dir).parent_path().string());
}

StatusOr<ckpt::CheckpointManifest> ReadCheckpointManifest(const std::string& dir) {
  const std::string path = dir + "/" + kCheckpointManifestName;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::NotFound(dir + " is not a whole checkpoint: no " + kCheckpointManifestName +
                            " (a committed checkpoint always has one: damaged, if it is one)");
  std::string bytes;
  char buf[1 << 16];
  size_t got;
  while (bytes.size() <= kMaxManifestBytes && (got = std::fread(buf, 1, sizeof(buf), f)) > 0)
    bytes.append(buf, got);
  const bool read_error = std::ferror(f);
  std::fclose(f);
  if (read_error) return Status::IOError("cannot read " + path);
  if (bytes.empty())
    return Status::Corruption(path + ": the manifest is empty (damaged: a committed checkpoint "
                              "always has one)");
  if (bytes.size() > kMaxManifestBytes)
    return Status::Corruption(path + ": more than " + std::to_string(kMaxManifestBytes) +
                              " bytes, not a manifest");
  ckpt::CheckpointManifest m;
  if (!m.ParseFromString(bytes))
    return Status::Corruption(path + ": the manifest does not parse (truncated or corrupt)");
  // Its own checksum: required from version 2 on, and checked wherever
  // present (a flipped version number does not turn it off).
  if (m.format_version() != kFormatVersionWithoutChecksum || m.has_manifest_crc32c()) {
    const size_t n = bytes.size();
    uint32_t stored = 0;
    const bool tail = n >= kManifestCrcBytes && static_cast<unsigned char>(bytes[n - 6]) ==
                                                     kManifestCrcTag[0] &&
                      static_cast<unsigned char>(bytes[n - 5]) == kManifestCrcTag[1];
    for (int i = 0; tail && i < 4; ++i)
      stored |= uint32_t{static_cast<unsigned char>(bytes[n - 4 + i])} << (8 * i);
    if (!tail)
      return Status::Corruption(path + ": the manifest does not end with its checksum "
                                "(truncated or corrupt)");
    const uint32_t actual = Crc32c(0, bytes.data(), n - kManifestCrcBytes);
    if (actual != stored)
      return Status::Corruption(path + ": the manifest fails its checksum (crc32c " +
                                std::to_string(actual) + ", stored " + std::to_string(stored) +
                                "): bit flips or a partial write");
  }
  if (m.format_version() != kFormatVersion && m.format_version() != kFormatVersionWithoutChecksum)
    return Status::Corruption(path + ": checkpoint format version " +
                              std::to_string(m.format_version()) + ", this build reads " +
                              std::to_string(kFormatVersionWithoutChecksum) + " and " +
                              std::to_string(kFormatVersion));
  if (m.virtual_shards() == 0 || m.step() < 0)
    return Status::Corruption(path + ": manifest without virtual shards or step");
  const int64_t named = CheckpointStep(fs::path(dir).lexically_normal().filename().string());
  if (named >= 0 && named != m.step())
    return Status::Corruption(path + ": the manifest says step " + std::to_string(m.step()) +
                              ", the directory's name step " + std::to_string(named));
  return m;
}

StatusOr<std::vector<std::string>> CheckpointChain(const std::string& dir) {
  std::vector<std::string> chain;
  std::string cur = fs::path(dir).lexically_normal().string();
  if (!cur.empty() && cur.back() == '/') cur.pop_back();
  const std::string root = fs::path(cur).parent_path().string();
  for (int guard = 0; guard < 100000; ++guard) {
    ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(cur));
    chain.push_back(cur);
    if (!m.incremental()) {
      std::reverse(chain.begin(), chain.end());
      return chain;
    }
    if (CheckpointStep(m.base()) < 0 || CheckpointStep(m.base()) >= m.step())
      return Status::Corruption(cur + ": incremental checkpoint with a bad base '" + m.base() + "'");
    const std::string base = root + "/" + m.base();
    std::error_code ec;
    if (!fs::exists(base, ec))
      return Status::Corruption(cur + ": builds on " + m.base() + ", which is missing");
    cur = base;
  }
  return Status::Corruption(dir + ": checkpoint chain does not end");
}

Status VerifyCheckpoint(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> chain, CheckpointChain(dir));
  for (const std::string& d : chain) {
    ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(d));
    RETURN_IF_ERROR(VerifyOne(d, m));
  }
  return Status::OK();
}

StatusOr<std::vector<CheckpointListing>> ListCheckpoints(const std::string& root) {
  std::vector<CheckpointListing> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory()) continue;
    std::string name = entry.path().filename().string();
    std::string base = name;
    const bool tmp = EndsWith(name, kTmpSuffix);
    if (tmp) base = name.substr(0, name.size() - (sizeof(kTmpSuffix) - 1));
    const int64_t step = CheckpointStep(base);
    if (step < 0) continue;
    CheckpointListing l;
    l.name = name;
    l.path = entry.path().string();
    l.step = step;
    l.unfinished = tmp;
    if (!tmp) {
      auto m = ReadCheckpointManifest(l.path);
      l.whole = m.ok();
      if (m.ok()) l.incremental = m->incremental();
    }
    out.push_back(l);
  }
  if (ec) return Status::IOError("cannot list " + root + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.step != b.step ? a.step < b.step : a.name < b.name;
  });
  return out;
}

StatusOr<std::string> FindResumableCheckpoint(const std::string& root,
                                              std::vector<std::string>* skipped) {
  ASSIGN_OR_RETURN(auto all, ListCheckpoints(root));
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->unfinished) {
      if (skipped) skipped->push_back(it->name + ": unfinished (no commit), ignored");
      continue;
    }
    Status s = VerifyCheckpoint(it->path);
    if (s.ok()) return it->path;
    if (skipped) skipped->push_back(it->name + ": " + s.message());
  }
  return Status::NotFound("no whole checkpoint in " + root);
}

Status RecoverInterruptedCommits(const std::string& root, std::vector<std::string>* notes) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return Status::OK();
  std::vector<std::string> olds;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t n = sizeof(kOldSuffix) - 1;
    if (entry.is_directory() && name.size() > n &&
        name.compare(name.size() - n, n, kOldSuffix) == 0 &&
        CheckpointStep(name.substr(0, name.size() - n)) >= 0)
      olds.push_back(name);
  }
  if (ec) return Status::IOError("cannot list " + root + ": " + ec.message());
  for (const std::string& name : olds) {
    const std::string old = root + "/" + name;
    const std::string base = name.substr(0, name.size() - (sizeof(kOldSuffix) - 1));
    const std::string final_dir = root + "/" + base;
    if (fs::exists(final_dir, ec)) {
      fs::remove_all(old, ec);
      if (ec) return Status::IOError("cannot remove " + old + ": " + ec.message());
      if (notes) notes->push_back(name + ": a replaced copy of " + base + ", removed");
      continue;
    }
    fs::rename(old, final_dir, ec);
    if (ec) return Status::IOError("cannot rename " + old + " back to " + final_dir + ": " +
                                   ec.message());
    if (notes)
      notes->push_back(name + ": its replacement was interrupted; restored as " + base);
  }
  if (!olds.empty()) return SyncDir(root);
  return Status::OK();
}

Status RemoveUnfinishedCheckpoints(const std::string& root, std::vector<std::string>* notes) {
  ASSIGN_OR_RETURN(auto all, ListCheckpoints(root));
  bool any = false;
  for (const CheckpointListing& l : all) {
    if (!l.unfinished) continue;
    std::error_code ec;
    fs::remove_all(l.path, ec);
    if (ec) return Status::IOError("cannot remove " + l.path + ": " + ec.message());
    any = true;
    if (notes) notes->push_back(l.name + ": an unfinished checkpoint (never committed), removed");
  }
  return any ? SyncDir(root) : Status::OK();
}

namespace {
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec).lexically_normal();
  if (ec) return path;
  if (!p.has_filename()) p = p.parent_path();  // "dir/" is "dir"
  return p.string();
}
}  // namespace

Status RecordStorePath(const std::string& root, const std::string& store_path) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IOError("cannot create " + root + ": " + ec.message());
  return WriteSynced(root + "/" + kStorePathName, AbsolutePath(store_path) + "\n");
}

bool StorePathRecorded(const std::string& root, const std::string& store_path) {
  auto text = ReadFileToString(root + "/" + kStorePathName);
  return text.ok() && *text == AbsolutePath(store_path) + "\n";
}

Status ApplyCheckpointRetention(const std::string& root, int keep_last) {
  ASSIGN_OR_RETURN(auto all, ListCheckpoints(root));
  std::set<std::string> keep;
  int kept = 0;
  for (auto it = all.rbegin(); it != all.rend() && kept < keep_last; ++it) {
    if (!it->whole) continue;
    ++kept;
    auto chain = CheckpointChain(it->path);
    if (!chain.ok()) {
      keep.insert(it->path);
      continue;
    }
    for (const auto& d : *chain) keep.insert(fs::path(d).lexically_normal().string());
  }
  for (const auto& l : all) {
    if (keep.count(fs::path(l.path).lexically_normal().string())) continue;
    // An unfinished directory newer than every whole checkpoint may be one
    // being written right now by this job: only the writer removes those.
    std::error_code ec;
    fs::remove_all(l.path, ec);
    if (ec) return Status::IOError("cannot remove old checkpoint " + l.path + ": " + ec.message());
  }
  return Status::OK();
}

Status CheckCheckpointMatches(const ckpt::CheckpointManifest& m, const Model& model,
                              const std::vector<std::pair<int, int>>& table_dims_slots,
                              uint32_t virtual_shards, int num_workers) {
  const std::string type = ModelTypeName(model.options().type);
  if (m.model_type() != type)
    return Status::InvalidArgument("the checkpoint holds a " + m.model_type() +
                                   " model, the config builds a " + type);
  if (m.virtual_shards() != virtual_shards)
    return Status::InvalidArgument("the checkpoint has " + std::to_string(m.virtual_shards()) +
                                   " virtual shards, the config " + std::to_string(virtual_shards) +
                                   " (storage.virtual_shards is fixed when a job is created)");
  if (num_workers >= 0 && m.num_workers() != num_workers)
    return Status::InvalidArgument(
        "the checkpoint was written by " + std::to_string(m.num_workers()) +
        " workers, this job has " + std::to_string(num_workers) +
        " (each worker resumes its own data partition; servers may change, workers may not)");
  const auto& params = model.DenseParams();
  if (static_cast<size_t>(m.dense_params_size()) != params.size())
    return Status::InvalidArgument("the checkpoint's model has " +
                                   std::to_string(m.dense_params_size()) +
                                   " dense parameters, the config's " + std::to_string(params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = m.dense_params(static_cast<int>(i));
    if (p.name() != params[i].name || p.rows() != params[i].rows || p.cols() != params[i].cols)
      return Status::InvalidArgument("dense parameter " + std::to_string(i) + ": checkpoint has " +
                                     p.name() + " " + std::to_string(p.rows()) + "x" +
                                     std::to_string(p.cols()) + ", the config's model " +
                                     params[i].name + " " + std::to_string(params[i].rows) + "x" +
                                     std::to_string(params[i].cols));
  }
  if (static_cast<size_t>(m.tables_size()) != table_dims_slots.size())
    return Status::InvalidArgument("the checkpoint has " + std::to_string(m.tables_size()) +
                                   " embedding tables, the config's model " +
                                   std::to_string(table_dims_slots.size()));
  for (const auto& t : m.tables()) {
    const int id = t.table_id();
    int field = -1;  // the model's field whose table this is
    for (int f = 0; f < static_cast<int>(table_dims_slots.size()); ++f)
      if (model.options().TableOf(f) == id) field = f;
    if (field < 0)
      return Status::InvalidArgument("the checkpoint has table " + std::to_string(id) +
                                     ", which the config's model does not (a removed field?)");
    const auto [dim, slots] = table_dims_slots[field];
    if (t.dim() != dim || t.slot_floats() != slots)
      return Status::InvalidArgument(
          "table " + std::to_string(id) + ": the checkpoint's rows are " + std::to_string(t.dim()) +
          " floats + " + std::to_string(t.slot_floats()) + " optimizer floats, the config's " +
          std::to_string(dim) + " + " + std::to_string(slots) +
          " (embedding dim or sparse optimizer changed)");
  }
  return Status::OK();
}

StatusOr<const float*> DenseArrayIn(const ckpt::CheckpointManifest& m, const std::string& dense,
                                    const std::string& name, uint64_t floats,
                                    const std::string& dir) {
  const uint64_t file_floats = dense.size() / sizeof(float);
  for (const auto& a : m.dense_arrays()) {
    if (a.name() != name) continue;
    // offset + floats could wrap: compare without adding.
    if (a.floats() != floats || a.offset() > file_floats || a.floats() > file_floats - a.offset())
      return Status::InvalidArgument(dir + ": dense array " + name + " has " +
                                     std::to_string(a.floats()) + " floats at " +
                                     std::to_string(a.offset()) + ", the model needs " +
                                     std::to_string(floats) + " (dense.bin holds " +
                                     std::to_string(file_floats) + ")");
    return reinterpret_cast<const float*>(dense.data()) + a.offset();
  }
  return Status::InvalidArgument(dir + ": no dense array " + name +
                                 " (was the dense optimizer changed?)");
}

Status LoadCheckpointWeights(const std::string& dir, Model* model, ps::EmbeddingClient* client) {
  RETURN_IF_ERROR(VerifyCheckpoint(dir));
  ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(dir));
  std::vector<std::pair<int, int>> tables;
  for (const auto& t : m.tables()) {
    if (t.table_id() < 0 || t.table_id() >= kMaxTables)
      return Status::Corruption(dir + ": bad table id in the manifest");
    if (tables.size() <= static_cast<size_t>(t.table_id())) tables.resize(t.table_id() + 1);
    tables[t.table_id()] = {t.dim(), t.slot_floats()};
  }
  // Tables are checked against the model's row widths; the optimizer
  // state size comes from the checkpoint (serving does not need it).
  for (int f = 0; f < model->options().num_fields; ++f)
    if (static_cast<size_t>(f) < tables.size() && tables[f].first != model->RowWidth(f))
      return Status::InvalidArgument(dir + ": table " + std::to_string(f) + " has dim " +
                                     std::to_string(tables[f].first) + ", the model's " +
                                     std::to_string(model->RowWidth(f)));
  RETURN_IF_ERROR(CheckCheckpointMatches(m, *model, tables, m.virtual_shards(), -1));
  if (client->NumVirtualShards() != m.virtual_shards())
    return Status::InvalidArgument(dir + ": " + std::to_string(m.virtual_shards()) +
                                   " virtual shards, the client routes by " +
                                   std::to_string(client->NumVirtualShards()));
  ASSIGN_OR_RETURN(std::vector<std::string> chain, CheckpointChain(dir));
  RETURN_IF_ERROR(client->LoadShards(chain));
  ASSIGN_OR_RETURN(std::string dense, ReadFileToString(dir + "/" + kDenseFileName));
  ASSIGN_OR_RETURN(const float* values, DenseArrayIn(m, dense, "values", model->dense_size(), dir));
  std::memcpy(model->dense_values(), values, model->dense_size() * sizeof(float));
  return Status::OK();
}

}  // namespace ctrps::worker
