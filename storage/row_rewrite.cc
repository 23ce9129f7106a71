// EmbeddingStore::RewriteTable's and UpdateRows' defaults: scan the table
// into a scratch file of new rows; RewriteTable then drops the table and
// creates it with the new spec; both put the rows back in chunks. Memory:
// one chunk of rows, whatever the table size.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/embedding_store.h"

namespace ctrps::storage {
namespace {

constexpr size_t kChunkRows = 16384;

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// A scratch file of records {key, stats, floats[width]}, removed when done.
class ScratchRows {
 public:
  static StatusOr<std::unique_ptr<ScratchRows>> Create(const std::string& dir, const void* owner,
                                                       int table, int width,
                                                       const std::string& what) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError(what + ": cannot create " + dir + ": " + ec.message());
    char name[80];
    std::snprintf(name, sizeof(name), "/rows-%d-%p.tmp", table, owner);
    std::unique_ptr<ScratchRows> s(new ScratchRows(dir + name, width, what));
    s->file_.reset(std::fopen(s->path_.c_str(), "wb"));
    if (!s->file_) return Status::IOError(what + ": cannot create " + s->path_);
    s->buf_.resize(s->record_);
    return s;
  }
  ~ScratchRows() {
    file_.reset();
    std::remove(path_.c_str());
  }
  // The record's floats, to fill before Append.
  float* floats() { return reinterpret_cast<float*>(buf_.data() + sizeof(Key) + sizeof(RowStats)); }
  bool Append(Key key, const RowStats& stats) {
    std::memcpy(buf_.data(), &key, sizeof(Key));
    std::memcpy(buf_.data() + sizeof(Key), &stats, sizeof(RowStats));
    if (std::fwrite(buf_.data(), record_, 1, file_.get()) != 1) return false;
    ++rows_;
    return true;
  }
  uint64_t rows() const { return rows_; }
  // Closes the file for writing and reads it back in chunks: fn(keys,
  // stats, floats (n x width), n).
  Status ForEachChunk(const std::function<Status(const Key*, const RowStats*, const float*, size_t)>& fn) {
    if (std::fflush(file_.get()) != 0)
      return Status::IOError(what_ + ": cannot write " + path_ + " (disk full?)");
    file_.reset(std::fopen(path_.c_str(), "rb"));
    if (!file_) return Status::IOError(what_ + ": cannot reopen " + path_);
    std::vector<char> buf(record_ * kChunkRows);
    std::vector<Key> keys(kChunkRows);
    std::vector<RowStats> stats(kChunkRows);
    std::vector<float> floats(static_cast<size_t>(width_) * kChunkRows);
    for (uint64_t done = 0; done < rows_;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkRows, rows_ - done));
      if (std::fread(buf.data(), record_, n, file_.get()) != n)
        return Status::IOError(what_ + ": short read of " + path_);
      for (size_t i = 0; i < n; ++i) {
        const char* r = buf.data() + i * record_;
        std::memcpy(&keys[i], r, sizeof(Key));
        std::memcpy(&stats[i], r + sizeof(Key), sizeof(RowStats));
        std::memcpy(floats.data() + i * width_, r + sizeof(Key) + sizeof(RowStats),
                    sizeof(float) * width_);
      }
      RETURN_IF_ERROR(fn(keys.data(), stats.data(), floats.data(), n));
      done += n;
    }
    return Status::OK();
  }

 private:
  ScratchRows(std::string path, int width, std::string what)
      : path_(std::move(path)), what_(std::move(what)), width_(width),
        record_(sizeof(Key) + sizeof(RowStats) + sizeof(float) * width) {}
  std::string path_, what_;
  int width_;
  size_t record_;
  File file_;
  std::vector<char> buf_;
  uint64_t rows_ = 0;
};

StatusOr<TableSpec> FindSpec(const EmbeddingStore& store, int table, const std::string& what) {
  for (const TableSpec& s : store.Tables())
    if (s.table_id == table) return s;
  return Status::NotFound(what + ": no such table");
}

}  // namespace

StatusOr<uint64_t> EmbeddingStore::UpdateRows(int table, const RowUpdateFn& fn,
                                              const std::string& scratch_dir) {
  const std::string what = "updating table " + std::to_string(table);
  ASSIGN_OR_RETURN(TableSpec spec, FindSpec(*this, table, what));
  const int width = spec.row_floats();
  ASSIGN_OR_RETURN(auto scratch, ScratchRows::Create(scratch_dir, this, table, width, what));
  bool write_failed = false;
  RETURN_IF_ERROR_CTX(Scan(table,
                           [&](Key key, const float* row, const RowStats& stats) {
                             if (!fn(key, row, scratch->floats())) return true;
                             write_failed = !scratch->Append(key, stats);
                             return !write_failed;
                           }),
                      what);
  if (write_failed) return Status::IOError(what + ": cannot write the scratch file (disk full?)");
  RETURN_IF_ERROR(scratch->ForEachChunk(
      [&](const Key* keys, const RowStats* stats, const float* rows, size_t n) {
        return Put(table, keys, n, rows, stats).WithContext(what);
      }));
  return scratch->rows();
}

Status EmbeddingStore::RewriteTable(const TableSpec& new_spec, const RowMapFn& map,
                                    const std::string& scratch_dir) {
  RETURN_IF_ERROR(new_spec.Validate());
  const int table = new_spec.table_id;
  const std::string what = "rewriting table " + std::to_string(table);
  RETURN_IF_ERROR(FindSpec(*this, table, what).status());
  // 1. Every row, mapped, to the scratch file: key, stats, new embedding.
  const int dim = new_spec.dim;
  ASSIGN_OR_RETURN(auto scratch, ScratchRows::Create(scratch_dir, this, table, dim, what));
  bool write_failed = false;
  RETURN_IF_ERROR_CTX(Scan(table,
                           [&](Key key, const float* row, const RowStats& stats) {
                             map(key, row, scratch->floats());
                             write_failed = !scratch->Append(key, stats);
                             return !write_failed;
                           }),
                      what);
  if (write_failed) return Status::IOError(what + ": cannot write the scratch file (disk full?)");
  // 2. The table with its new geometry.
  RETURN_IF_ERROR_CTX(DropTable(table), what);
  RETURN_IF_ERROR_CTX(CreateTable(new_spec), what);
  // 3. The rows back, chunk by chunk, with fresh optimizer state.
  const int width = new_spec.row_floats();
  std::vector<float> full;
  return scratch->ForEachChunk([&](const Key* keys, const RowStats* stats, const float* rows,
                                   size_t n) {
    full.resize(static_cast<size_t>(width) * n);
    for (size_t i = 0; i < n; ++i) {
      float* row = full.data() + i * width;
      std::memcpy(row, rows + i * dim, sizeof(float) * dim);
      InitRow(new_spec.init, keys[i], 0, new_spec.slot_floats, row + dim);  // slots only
    }
    return Put(table, keys, n, full.data(), stats).WithContext(what);
  });
}

}  // namespace ctrps::storage
