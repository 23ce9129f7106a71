#include "storage/snapshot.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace ctrps::storage {
namespace fs = std::filesystem;
namespace {

struct Entry {
  std::string rel;
  uint64_t size = 0;
  uint32_t crc = 0;
};

StatusOr<uint32_t> Crc32OfFile(const std::string& path, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::vector<char> buf(size_t{4} << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), buf.size());
    std::streamsize got = in.gcount();
    if (got <= 0) break;
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<size_t>(got));
    total += got;
  }
  if (in.bad()) return Status::IOError(path + ": read error");
  *size = total;
  return static_cast<uint32_t>(crc);
}

// Checksums entries in parallel (files are independent).
Status ChecksumAll(const std::string& dir, std::vector<Entry>* entries, std::vector<uint64_t>* sizes) {
  sizes->assign(entries->size(), 0);
  std::vector<Status> status(entries->size());
  size_t threads = std::max<size_t>(1, std::min<size_t>(4, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      for (size_t i = w; i < entries->size(); i += threads) {
        auto crc = Crc32OfFile(dir + "/" + (*entries)[i].rel, &(*sizes)[i]);
        if (crc.ok()) (*entries)[i].crc = *crc; else status[i] = crc.status();
      }
    });
  for (auto& t : pool) t.join();
  for (const Status& s : status) RETURN_IF_ERROR(s);
  return Status::OK();
}

StatusOr<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), dir).generic_string();
    if (rel == kManifestName || rel == std::string(kManifestName) + ".tmp") continue;
    out.push_back(rel);
  }
  if (ec) return Status::IOError("listing " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Status WriteManifest(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListFiles(dir));
  std::vector<Entry> entries(files.size());
  for (size_t i = 0; i < files.size(); ++i) entries[i].rel = files[i];
  std::vector<uint64_t> sizes;
  RETURN_IF_ERROR_CTX(ChecksumAll(dir, &entries, &sizes), "writing snapshot manifest");
  const std::string tmp = dir + "/" + kManifestName + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "ctrps-snapshot 1\n";
    char crc[16];
    for (size_t i = 0; i < entries.size(); ++i) {
      std::snprintf(crc, sizeof(crc), "%08x", entries[i].crc);
      out << sizes[i] << " " << crc << " " << entries[i].rel << "\n";
    }
    out.flush();
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, dir + "/" + kManifestName, ec);
  if (ec) return Status::IOError("renaming " + tmp + ": " + ec.message());
  return Status::OK();
}

Status VerifySnapshot(const std::string& dir) {
  const std::string mpath = dir + "/" + kManifestName;
  std::ifstream in(mpath);
  if (!in) return Status::NotFound(mpath + ": no manifest (snapshot incomplete or not a snapshot)");
  std::string line;
  if (!std::getline(in, line) || line != "ctrps-snapshot 1")
    return Status::Corruption(mpath + ":1: expected 'ctrps-snapshot 1', got '" + line + "'");
  std::vector<Entry> want;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    std::istringstream ls(line);
    Entry e;
    std::string crc;
    if (!(ls >> e.size >> crc >> e.rel) || crc.size() != 8)
      return Status::Corruption(mpath + ":" + std::to_string(lineno) + ": malformed line '" + line + "'");
    e.crc = static_cast<uint32_t>(std::stoul(crc, nullptr, 16));
    want.push_back(e);
  }
  if (want.empty()) return Status::Corruption(mpath + ": lists no files");
  std::vector<std::string> listed;
  for (const Entry& e : want) {
    const std::string path = dir + "/" + e.rel;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      return Status::NotFound(path + ": listed in the manifest but missing");
    uint64_t size = fs::file_size(path, ec);
    if (size != e.size)
      return Status::Corruption(path + ": " + std::to_string(size) + " bytes, manifest says " +
                                std::to_string(e.size) + (size < e.size ? " (truncated)" : ""));
    listed.push_back(e.rel);
  }
  std::vector<Entry> got = want;
  std::vector<uint64_t> sizes;
  RETURN_IF_ERROR_CTX(ChecksumAll(dir, &got, &sizes), "verifying snapshot " + dir);
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i].crc != want[i].crc) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), ": crc32 %08x, manifest says %08x", got[i].crc, want[i].crc);
      return Status::Corruption(dir + "/" + want[i].rel + buf + " (contents changed)");
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> present, ListFiles(dir));
  std::sort(listed.begin(), listed.end());
  for (const std::string& f : present)
    if (!std::binary_search(listed.begin(), listed.end(), f))
      return Status::Corruption(dir + "/" + f + ": present but not listed in the manifest");
  return Status::OK();
}

Status RestoreSnapshotFiles(const std::string& snapshot_dir, const std::string& dest) {
  RETURN_IF_ERROR(VerifySnapshot(snapshot_dir));
  std::error_code ec;
  if (fs::exists(dest, ec) && !fs::is_empty(dest, ec))
    return Status::FailedPrecondition("restore target " + dest + " is not empty");
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListFiles(snapshot_dir));
  for (const std::string& rel : files) {
    fs::path to = fs::path(dest) / rel, from = fs::path(snapshot_dir) / rel;
    fs::create_directories(to.parent_path(), ec);
    if (ec) return Status::IOError("creating " + to.parent_path().string() + ": " + ec.message());
    // SST files are immutable: share them. Everything else (CURRENT,
    // MANIFEST, OPTIONS) is rewritten by RocksDB on open: copy.
    bool linked = false;
    if (to.extension() == ".sst") {
      fs::create_hard_link(from, to, ec);
      linked = !ec;
    }
    if (!linked) {
      fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::IOError("copying " + from.string() + " to " + to.string() + ": " + ec.message());
    }
  }
  return Status::OK();
}

}  // namespace ctrps::storage
