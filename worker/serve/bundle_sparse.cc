#include "worker/serve/bundle_sparse.h"

#include <cstring>

namespace ctrps::worker::serve {
namespace proto = ::ctrps::serve::proto;
namespace {

// Caps on the sparse sections, checked before anything is allocated for them.
constexpr int64_t kMaxSparseDim = int64_t{1} << 24;
constexpr uint64_t kMaxSparseEntries = uint64_t{1} << 28;  // 1 GiB of floats expanded

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Little-endian arrays out of proto bytes (the host is little-endian: x86-64, aarch64).
template <typename T>
void CopyOut(const std::string& bytes, std::vector<T>* out) {
  out->resize(bytes.size() / sizeof(T));
  std::memcpy(out->data(), bytes.data(), out->size() * sizeof(T));
}

}  // namespace

// The dense tensors the sparse parts stand for.
std::vector<std::string> CoveredTensors(const SparseParts& sp) {
  std::vector<std::string> names;
  for (const SparseWeight& w : sp.weights) names.push_back(w.layer + ".weight");
  if (!sp.pairs.tensor.empty()) names.push_back(sp.pairs.tensor);
  return names;
}

void SparsePartsToProto(const SparseParts& sp, bool with_values, proto::SparseParts* p) {
  for (const SparseWeight& w : sp.weights) {
    proto::SparseWeight* pw = p->add_weights();
    pw->set_layer(w.layer);
    pw->set_rows(w.csr.rows);
    pw->set_cols(w.csr.cols);
    pw->set_nnz(w.csr.nnz());
    if (!with_values) continue;
    pw->set_row_starts(Bytes(w.csr.row_starts));
    if (w.csr.cols <= 65536) {
      std::vector<uint16_t> c(w.csr.col.begin(), w.csr.col.end());
      pw->set_cols_index(Bytes(c));
    } else {
      pw->set_cols_index(Bytes(w.csr.col));
    }
    pw->set_values_f32(Bytes(w.csr.values));
    pw->set_crc32(Crc32(pw->row_starts() + pw->cols_index() + pw->values_f32()));
  }
  const FieldPairList& fp = sp.pairs;
  if (!fp.tensor.empty()) {
    proto::FieldPairs* pp = p->mutable_field_pairs();
    pp->set_tensor(fp.tensor);
    pp->set_num_fields(fp.num_fields);
    pp->set_count(static_cast<uint32_t>(fp.values.size()));
    if (with_values) {
      std::vector<uint16_t> ij;
      for (size_t k = 0; k < fp.values.size(); ++k) {
        ij.push_back(fp.first[k]);
        ij.push_back(fp.second[k]);
      }
      pp->set_pairs(Bytes(ij));
      pp->set_values_f32(Bytes(fp.values));
      pp->set_crc32(Crc32(pp->pairs() + pp->values_f32()));
    }
  }
}

Status ReadSparseParts(const proto::SparseParts& sp, BundleManifest* m) {
  auto bad = [](const std::string& why) { return Status::Corruption(why); };
  std::vector<std::string> names;
  for (const DenseTensor& t : m->dense) names.push_back(t.name);
  auto claim = [&](const std::string& tensor, const std::string& field) -> Status {
    if (std::find(names.begin(), names.end(), tensor) != names.end())
      return bad(field + ": dense tensor '" + tensor + "' is stored both dense and sparse");
    names.push_back(tensor);
    return Status::OK();
  };
  for (int l = 0; l < sp.weights_size(); ++l) {
    const proto::SparseWeight& pw = sp.weights(l);
    const std::string field = "sparse.weights[" + std::to_string(l) + "] ('" + pw.layer() + "')";
    if (pw.layer().empty()) return bad(field + ": no layer name");
    RETURN_IF_ERROR(claim(pw.layer() + ".weight", field));
    const int64_t rows = pw.rows(), cols = pw.cols();
    if (rows < 1 || cols < 1 || rows > kMaxSparseDim || cols > kMaxSparseDim)
      return bad(field + ": shape " + std::to_string(rows) + " x " + std::to_string(cols) +
                 " outside 1 .. " + std::to_string(kMaxSparseDim));
    const uint64_t nnz = pw.nnz();
    if (nnz > static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) || nnz > kMaxSparseEntries)
      return bad(field + ": nnz " + std::to_string(nnz) + " exceeds its " + std::to_string(rows) +
                 " x " + std::to_string(cols) + " entries");
    if (static_cast<uint64_t>(rows) * cols > kMaxSparseEntries)
      return bad(field + ": " + std::to_string(rows) + " x " + std::to_string(cols) +
                 " entries exceed the cap of " + std::to_string(kMaxSparseEntries));
    const uint64_t index_bytes = cols <= 65536 ? 2 : 4;
    if (pw.row_starts().size() != (static_cast<uint64_t>(rows) + 1) * 4)
      return bad(field + ": row_starts holds " + std::to_string(pw.row_starts().size()) +
                 " bytes, expected " + std::to_string((rows + 1) * 4));
    if (pw.cols_index().size() != nnz * index_bytes)
      return bad(field + ": cols_index holds " + std::to_string(pw.cols_index().size()) +
                 " bytes, expected " + std::to_string(nnz * index_bytes));
    if (pw.values_f32().size() != nnz * 4)
      return bad(field + ": values_f32 holds " + std::to_string(pw.values_f32().size()) +
                 " bytes, expected " + std::to_string(nnz * 4));
    if (!pw.has_crc32() ||
        Crc32(pw.row_starts() + pw.cols_index() + pw.values_f32()) != pw.crc32())
      return bad(field + ": checksum mismatch (the file is corrupt)");
    SparseWeight w;
    w.layer = pw.layer();
    CsrMatrix& c = w.csr;
    c.rows = static_cast<int>(rows);
    c.cols = static_cast<int>(cols);
    CopyOut(pw.row_starts(), &c.row_starts);
    if (index_bytes == 2) {
      std::vector<uint16_t> c16;
      CopyOut(pw.cols_index(), &c16);
      c.col.assign(c16.begin(), c16.end());
    } else {
      CopyOut(pw.cols_index(), &c.col);
    }
    CopyOut(pw.values_f32(), &c.values);
    if (c.row_starts[0] != 0 || c.row_starts[rows] != nnz)
      return bad(field + ": row_starts run from " + std::to_string(c.row_starts[0]) + " to " +
                 std::to_string(c.row_starts[rows]) + ", expected 0 to nnz " +
                 std::to_string(nnz));
    for (int64_t o = 0; o < rows; ++o) {
      if (c.row_starts[o + 1] < c.row_starts[o])
        return bad(field + ": row_starts decrease at row " + std::to_string(o));
      for (uint32_t k = c.row_starts[o]; k < c.row_starts[o + 1]; ++k)
        if (c.col[k] >= cols || (k > c.row_starts[o] && c.col[k] <= c.col[k - 1]))
          return bad(field + ": cols_index of row " + std::to_string(o) +
                     " not ascending within 0 .. " + std::to_string(cols - 1) + " at entry " +
                     std::to_string(k));
    }
    DenseTensor t;
    t.name = w.layer + ".weight";
    t.rows = c.rows;
    t.cols = c.cols;
    t.values = c.ToDense();
    m->dense.push_back(std::move(t));
    m->sparse.weights.push_back(std::move(w));
  }
  if (sp.has_field_pairs()) {
    const proto::FieldPairs& pp = sp.field_pairs();
    const std::string field = "sparse.field_pairs ('" + pp.tensor() + "')";
    if (pp.tensor().empty()) return bad("sparse.field_pairs: no tensor name");
    RETURN_IF_ERROR(claim(pp.tensor(), field));
    const int64_t F = pp.num_fields();
    if (F != m->model.num_fields)
      return bad(field + ": num_fields " + std::to_string(F) + ", the model has " +
                 std::to_string(m->model.num_fields));
    const uint64_t count = pp.count();
    if (count > static_cast<uint64_t>(F) * (F - 1) / 2)
      return bad(field + ": count " + std::to_string(count) + " exceeds the " +
                 std::to_string(F * (F - 1) / 2) + " pairs of " + std::to_string(F) + " fields");
    if (pp.pairs().size() != count * 4)
      return bad(field + ": pairs holds " + std::to_string(pp.pairs().size()) +
                 " bytes, expected " + std::to_string(count * 4));
    if (pp.values_f32().size() != count * 4)
      return bad(field + ": values_f32 holds " + std::to_string(pp.values_f32().size()) +
                 " bytes, expected " + std::to_string(count * 4));
    if (!pp.has_crc32() || Crc32(pp.pairs() + pp.values_f32()) != pp.crc32())
      return bad(field + ": checksum mismatch (the file is corrupt)");
    FieldPairList& fp = m->sparse.pairs;
    fp.tensor = pp.tensor();
    fp.num_fields = static_cast<int>(F);
    std::vector<uint16_t> ij;
    CopyOut(pp.pairs(), &ij);
    CopyOut(pp.values_f32(), &fp.values);
    DenseTensor t;
    t.name = fp.tensor;
    t.rows = t.cols = static_cast<int>(F);
    t.values.assign(static_cast<size_t>(F * F), 0.0f);
    for (uint64_t k = 0; k < count; ++k) {
      const int i = ij[2 * k], j = ij[2 * k + 1];
      if (i >= j || j >= F ||
          (k > 0 && (i < fp.first.back() || (i == fp.first.back() && j <= fp.second.back()))))
        return bad(field + ": pair " + std::to_string(k) + " (" + std::to_string(i) + ", " +
                   std::to_string(j) + ") is not i < j < " + std::to_string(F) +
                   " in ascending order");
      fp.first.push_back(static_cast<uint16_t>(i));
      fp.second.push_back(static_cast<uint16_t>(j));
      t.values[static_cast<size_t>(j) * F + i] = fp.values[k];
      t.values[static_cast<size_t>(i) * F + j] = fp.values[k];
    }
    m->dense.push_back(std::move(t));
  }
  return Status::OK();
}

}  // namespace ctrps::worker::serve
