// EmbeddingStore::RewriteTable's default: scan the table into a scratch
// file of new rows, drop the table, create it with the new spec and put the
// rows back in chunks. Memory: one chunk of rows, whatever the table size.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

}  // namespace

Status EmbeddingStore::RewriteTable(const TableSpec& new_spec, const RowMapFn& map,
                                    const std::string& scratch_dir) {
  RETURN_IF_ERROR(new_spec.Validate());
  const int table = new_spec.table_id;
  const std::string what = "rewriting table " + std::to_string(table);
  TableSpec old;
  bool found = false;
  for (const TableSpec& s : Tables())
    if (s.table_id == table) old = s, found = true;
  if (!found) return Status::NotFound(what + ": no such table");
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir, ec);
  if (ec) return Status::IOError(what + ": cannot create " + scratch_dir + ": " + ec.message());
  char name[64];
  std::snprintf(name, sizeof(name), "/rewrite-%d-%p.tmp", table, static_cast<void*>(this));
  const std::string path = scratch_dir + name;
  struct Remover {
    std::string p;
    ~Remover() { std::remove(p.c_str()); }
  } remover{path};

  // 1. Every row, mapped, to the scratch file: key, stats, new embedding.
  const int dim = new_spec.dim;
  const size_t record = sizeof(Key) + sizeof(RowStats) + sizeof(float) * dim;
  uint64_t rows = 0;
  {
    File out(std::fopen(path.c_str(), "wb"));
    if (!out) return Status::IOError(what + ": cannot create " + path);
    std::vector<char> buf(record);
    bool write_failed = false;
    RETURN_IF_ERROR_CTX(Scan(table,
                             [&](Key key, const float* row, const RowStats& stats) {
                               std::memcpy(buf.data(), &key, sizeof(Key));
                               std::memcpy(buf.data() + sizeof(Key), &stats, sizeof(RowStats));
                               map(key, row, reinterpret_cast<float*>(buf.data() + sizeof(Key) +
                                                                      sizeof(RowStats)));
                               if (std::fwrite(buf.data(), record, 1, out.get()) != 1) {
                                 write_failed = true;
                                 return false;
                               }
                               ++rows;
                               return true;
                             }),
                        what);
    if (write_failed || std::fflush(out.get()) != 0)
      return Status::IOError(what + ": cannot write " + path + " (disk full?)");
  }
  // 2. The table with its new geometry.
  RETURN_IF_ERROR_CTX(DropTable(table), what);
  RETURN_IF_ERROR_CTX(CreateTable(new_spec), what);
  // 3. The rows back, chunk by chunk, with fresh optimizer state.
  File in(std::fopen(path.c_str(), "rb"));
  if (!in) return Status::IOError(what + ": cannot reopen " + path);
  const int width = new_spec.row_floats();
  std::vector<char> buf(record * kChunkRows);
  std::vector<Key> keys(kChunkRows);
  std::vector<RowStats> stats(kChunkRows);
  std::vector<float> full(static_cast<size_t>(width) * kChunkRows);
  for (uint64_t done = 0; done < rows;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkRows, rows - done));
    if (std::fread(buf.data(), record, n, in.get()) != n)
      return Status::IOError(what + ": short read of " + path);
    for (size_t i = 0; i < n; ++i) {
      const char* r = buf.data() + i * record;
      std::memcpy(&keys[i], r, sizeof(Key));
      std::memcpy(&stats[i], r + sizeof(Key), sizeof(RowStats));
      float* row = full.data() + i * width;
      std::memcpy(row, r + sizeof(Key) + sizeof(RowStats), sizeof(float) * dim);
      InitRow(new_spec.init, keys[i], 0, new_spec.slot_floats, row + dim);  // slots only
    }
    RETURN_IF_ERROR_CTX(Put(table, keys.data(), n, full.data(), stats.data()), what);
    done += n;
  }
  return Status::OK();
}

}  // namespace ctrps::storage
