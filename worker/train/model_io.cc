#include "worker/train/model_io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

namespace ctrps::worker {
namespace fs = std::filesystem;
namespace {

uint32_t Crc(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

Status WriteFile(const fs::path& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IOError("cannot create " + path.string() + ": " + std::strerror(errno));
  size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = n == bytes.size() && std::fflush(f) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::IOError("cannot write " + path.string() + ": " + std::strerror(errno));
  return Status::OK();
}

template <typename T>
void Append(std::string* s, const T& v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read " + path);
  return ss.str();
}

Status SaveModel(const std::string& dir, Model* model, ps::EmbeddingClient* client,
                 const std::vector<std::pair<std::string, std::string>>& extra_files) {
  fs::path final_dir(dir), tmp(dir + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::IOError("cannot create " + tmp.string() + ": " + ec.message());

  std::ostringstream manifest;
  manifest << "ctrps-model 1\n";
  std::string dense(reinterpret_cast<const char*>(model->dense_values()),
                    model->dense_size() * sizeof(float));
  RETURN_IF_ERROR(WriteFile(tmp / "dense.bin", dense));
  manifest << "dense " << model->dense_size() << " " << Crc(dense) << "\n";

  for (int f = 0; f < model->options().num_fields; ++f) {
    const int width = model->RowWidth(f);
    const int table = model->options().TableOf(f);
    std::vector<std::pair<Key, std::vector<float>>> rows;
    RETURN_IF_ERROR(client->ScanRows(table, [&](Key k, const float* r) {
      rows.emplace_back(k, std::vector<float>(r, r + width));
      return true;
    }));
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string bytes;
    bytes.reserve(rows.size() * (8 + 4 * width));
    for (const auto& [k, v] : rows) {
      Append(&bytes, k);
      bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    }
    RETURN_IF_ERROR(WriteFile(tmp / ("table_" + std::to_string(table) + ".bin"), bytes));
    manifest << "table " << table << " " << width << " " << rows.size() << " " << Crc(bytes) << "\n";
  }
  for (const DenseParamInfo& p : model->DenseParams())
    manifest << "param " << p.name << " " << p.rows << " " << p.cols << " " << p.offset << "\n";
  for (const auto& [name, contents] : extra_files) RETURN_IF_ERROR(WriteFile(tmp / name, contents));
  RETURN_IF_ERROR(WriteFile(tmp / "MANIFEST", manifest.str()));

  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) return Status::IOError("cannot rename " + tmp.string() + " to " + dir + ": " + ec.message());
  return Status::OK();
}

Status LoadModel(const std::string& dir, Model* model, ps::EmbeddingClient* client) {
  const std::string mpath = dir + "/MANIFEST";
  ASSIGN_OR_RETURN(std::string manifest, ReadFileToString(mpath));
  std::istringstream in(manifest);
  std::string line;
  int line_no = 0;
  auto bad = [&](const std::string& why) {
    return Status::Corruption(mpath + ":" + std::to_string(line_no) + ": " + why);
  };
  auto load_checked = [&](const std::string& name, uint32_t crc,
                          size_t expect_bytes) -> StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(dir + "/" + name));
    if (bytes.size() != expect_bytes)
      return Status::Corruption(dir + "/" + name + ": " + std::to_string(bytes.size()) +
                                " bytes, expected " + std::to_string(expect_bytes) +
                                " (truncated or wrong file)");
    if (Crc(bytes) != crc)
      return Status::Corruption(dir + "/" + name + ": checksum mismatch (file is corrupt)");
    return bytes;
  };
  bool saw_header = false, saw_dense = false;
  int tables = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind.empty()) continue;
    if (!saw_header) {
      int version = 0;
      ls >> version;
      if (kind != "ctrps-model" || version != 1)
        return bad("not a ctrps model manifest (expected 'ctrps-model 1')");
      saw_header = true;
    } else if (kind == "dense") {
      size_t n;
      uint32_t crc;
      if (!(ls >> n >> crc)) return bad("malformed dense line");
      if (n != model->dense_size())
        return bad("model has " + std::to_string(n) + " dense floats, the config builds " +
                   std::to_string(model->dense_size()));
      ASSIGN_OR_RETURN(std::string bytes, load_checked("dense.bin", crc, n * sizeof(float)));
      std::memcpy(model->dense_values(), bytes.data(), bytes.size());
      saw_dense = true;
    } else if (kind == "table") {
      int id, width;
      size_t rows;
      uint32_t crc;
      if (!(ls >> id >> width >> rows >> crc)) return bad("malformed table line");
      int field = -1;  // the model's field whose table this is
      for (int f = 0; f < model->options().num_fields; ++f)
        if (model->options().TableOf(f) == id) field = f;
      if (field < 0 || width != model->RowWidth(field))
        return bad("table " + std::to_string(id) + " of width " + std::to_string(width) +
                   " does not match the model");
      const size_t rec = 8 + 4 * static_cast<size_t>(width);
      // rows * rec must not wrap into the file's size (and rows then
      // size the allocations below).
      if (rows > std::numeric_limits<size_t>::max() / rec)
        return bad("table " + std::to_string(id) + " claims " + std::to_string(rows) + " rows");
      ASSIGN_OR_RETURN(std::string bytes,
                       load_checked("table_" + std::to_string(id) + ".bin", crc, rows * rec));
      std::vector<Key> keys(rows);
      std::vector<float> vals(rows * width);
      for (size_t i = 0; i < rows; ++i) {
        std::memcpy(&keys[i], bytes.data() + i * rec, 8);
        std::memcpy(vals.data() + i * width, bytes.data() + i * rec + 8, 4 * width);
      }
      RETURN_IF_ERROR(client->LoadRows(id, keys.data(), rows, vals.data()));
      ++tables;
    } else if (kind == "param") {
      // Informational: names and shapes of the dense parameters.
    } else {
      return bad("unknown entry '" + kind + "'");
    }
  }
  if (!saw_header || !saw_dense) return Status::Corruption(mpath + ": incomplete manifest");
  if (tables != model->options().num_fields)
    return Status::Corruption(mpath + ": " + std::to_string(tables) + " tables, the model has " +
                              std::to_string(model->options().num_fields) + " fields");
  return Status::OK();
}

}  // namespace ctrps::worker
