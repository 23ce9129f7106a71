#include "worker/serve/bundle.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "worker/serve/bundle.pb.h"
#include "worker/serve/bundle_sparse.h"

namespace ctrps::worker::serve {
namespace fs = std::filesystem;
namespace proto = ::ctrps::serve::proto;
namespace {

// Version 1: uncompressed models. Version 2 adds ModelSpec.low_rank and
// emb_decode_dims. Writers use the lowest version that holds the model.
constexpr uint32_t kFormatVersionUncompressed = 1;
constexpr uint32_t kFormatVersionCompressed = 2;
// Version 3: pruned models (BundleModel.sparse, SPARSE_ROWS tables).
constexpr uint32_t kFormatVersionSparse = 3;
// Version 4: tables with packed keys (TableEntry.key_encoding).
constexpr uint32_t kFormatVersionPackedKeys = 4;
// Models with removed fields (UMEC): model.field_tables, data.keep_fields.
constexpr uint32_t kFormatVersionFields = 5;
constexpr uint32_t kFormatVersionLatest = kFormatVersionFields;

bool HasSparseParts(const BundleManifest& m) {
  return !m.sparse.empty() ||
         std::any_of(m.tables.begin(), m.tables.end(), [](const TableEntry& t) {
           return t.layout == TableEntry::Layout::kSparseRows;
         });
}

bool HasCompressedStructure(const ModelOptions& o) {
  return !o.low_rank.empty() || std::any_of(o.emb_decode_dims.begin(), o.emb_decode_dims.end(),
                                            [](int d) { return d != 0; });
}

proto::ModelType ToProto(ModelType t) {
  switch (t) {
    case ModelType::kLR:
      return proto::LR;
    case ModelType::kFM:
      return proto::FM;
    case ModelType::kFwFM:
      return proto::FWFM;
    case ModelType::kDeepFM:
      return proto::DEEPFM;
    case ModelType::kDeepFwFM:
      return proto::DEEPFWFM;
    case ModelType::kDCNv2:
      return proto::DCN_V2;
    case ModelType::kDLRM:
      return proto::DLRM;
  }
  return proto::LR;
}

ModelType FromProto(proto::ModelType t) {
  switch (t) {
    case proto::LR:
      return ModelType::kLR;
    case proto::FM:
      return ModelType::kFM;
    case proto::FWFM:
      return ModelType::kFwFM;
    case proto::DEEPFM:
      return ModelType::kDeepFM;
    case proto::DEEPFWFM:
      return ModelType::kDeepFwFM;
    case proto::DCN_V2:
      return ModelType::kDCNv2;
    case proto::DLRM:
      return ModelType::kDLRM;
  }
  return ModelType::kLR;
}

proto::DataFormat ToProto(DataFormat f) {
  switch (f) {
    case DataFormat::kCriteo:
      return proto::CRITEO;
    case DataFormat::kAvazu:
      return proto::AVAZU;
    case DataFormat::kLibffm:
      return proto::LIBFFM;
  }
  return proto::CRITEO;
}

DataFormat FromProto(proto::DataFormat f) {
  switch (f) {
    case proto::CRITEO:
      return DataFormat::kCriteo;
    case proto::AVAZU:
      return DataFormat::kAvazu;
    case proto::LIBFFM:
      return DataFormat::kLibffm;
  }
  return DataFormat::kCriteo;
}

void ToProto(const BundleManifest& m, bool with_values, proto::BundleModel* p) {
  const ModelOptions& o = m.model;
  const bool compressed = HasCompressedStructure(o);
  const bool sparse = HasSparseParts(m);
  const bool packed_keys = std::any_of(m.tables.begin(), m.tables.end(), [](const TableEntry& t) {
    return t.key_encoding == KeyEncoding::kPacked;
  });
  p->set_format_version(!o.field_tables.empty() ? kFormatVersionFields
                        : packed_keys  ? kFormatVersionPackedKeys
                        : sparse     ? kFormatVersionSparse
                        : compressed ? kFormatVersionCompressed
                                     : kFormatVersionUncompressed);
  proto::ModelSpec* ms = p->mutable_model();
  ms->set_type(ToProto(o.type));
  ms->set_num_fields(o.num_fields);
  for (int d : o.emb_dims) ms->add_emb_dims(d);
  for (int d : o.mlp_dims) ms->add_mlp_dims(d);
  ms->set_cross_layers(o.cross_layers);
  ms->set_cross_rank(o.cross_rank);
  ms->set_dlrm_interaction_cat(o.dlrm_interaction_cat);
  ms->set_num_dense_fields(o.num_dense_fields);
  for (int d : o.bottom_mlp_dims) ms->add_bottom_mlp_dims(d);
  ms->set_dropout(o.dropout);
  ms->set_seed(o.seed);
  if (compressed) {
    for (const LowRankLayer& r : o.low_rank) {
      proto::LowRankLayer* pr = ms->add_low_rank();
      pr->set_layer(r.layer);
      pr->set_rank(r.rank);
      pr->set_relu(r.relu);
    }
    for (int d : o.emb_decode_dims) ms->add_emb_decode_dims(d);
  }
  for (int t : o.field_tables) ms->add_field_tables(t);

  proto::DataSpec* ds = p->mutable_data();
  ds->set_format(ToProto(m.data.parser.format));
  ds->set_hash_seed(m.data.parser.hash_seed);
  ds->set_integer_encoding(m.data.parser.criteo_integer_encoding == IntegerEncoding::kScale
                               ? proto::SCALE
                               : proto::LOG_BUCKET);
  ds->set_libffm_num_fields(m.data.parser.libffm_num_fields);
  for (const auto& n : m.data.field_names) ds->add_field_names(n);
  for (int f : m.data.parser.keep_fields) ds->add_keep_fields(f);

  const std::vector<std::string> covered = CoveredTensors(m.sparse);
  for (const DenseTensor& t : m.dense) {
    if (std::find(covered.begin(), covered.end(), t.name) != covered.end()) continue;
    proto::DenseTensor* pt = p->add_dense();
    pt->set_name(t.name);
    pt->set_rows(t.rows);
    pt->set_cols(t.cols);
    if (with_values) {
      pt->set_values_f32(std::string(reinterpret_cast<const char*>(t.values.data()),
                                     t.values.size() * sizeof(float)));
      pt->set_crc32(Crc32(pt->values_f32()));
    }
  }
  for (const TableEntry& t : m.tables) {
    proto::TableEntry* pt = p->add_tables();
    pt->set_table_id(t.table_id);
    pt->set_file(t.file);
    pt->set_width(t.width);
    pt->set_rows(t.rows);
    pt->set_dtype(static_cast<proto::TableDtype>(t.dtype));
    pt->set_crc32(t.crc32);
    pt->set_file_bytes(t.file_bytes);
    pt->set_init_zero_prefix(t.init_zero_prefix);
    if (t.layout == TableEntry::Layout::kSparseRows) {
      pt->set_layout(proto::SPARSE_ROWS);
      pt->set_nnz(t.nnz);
    }
    if (t.key_encoding == KeyEncoding::kPacked) pt->set_key_encoding(proto::KEYS_PACKED);
  }
  if (!m.sparse.empty()) SparsePartsToProto(m.sparse, with_values, p->mutable_sparse());
  const bool zero = m.unknown_keys.policy == UnknownKeyRows::Policy::kZero;
  proto::UnknownKeys* uk = p->mutable_unknown_keys();
  uk->set_policy(zero ? proto::ZERO_ROW : proto::KEY_SEEDED_INIT);
  if (!zero) {
    uk->set_init_seed(m.unknown_keys.init_seed);
    uk->set_init_scale(m.unknown_keys.init_scale);
  }
  p->mutable_compression()->set_method(m.compression_method);
  p->set_source(m.source);
  p->set_unknown_keys_are_zero(zero);
}

Status WriteString(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::IOError("cannot write " + path.string());
  return Status::OK();
}

}  // namespace

const char* TableDtypeName(TableDtype t) {
  switch (t) {
    case TableDtype::kFloat32:
      return "fp32";
    case TableDtype::kFloat16:
      return "fp16";
    case TableDtype::kInt8:
      return "int8";
  }
  return "unknown";
}

StatusOr<TableDtype> ParseTableDtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return TableDtype::kFloat32;
  if (name == "fp16" || name == "float16") return TableDtype::kFloat16;
  if (name == "int8") return TableDtype::kInt8;
  return Status::InvalidArgument("unknown table dtype '" + name + "', expected fp32, fp16 or int8");
}

bool IsBundleDir(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kBundleModelFile, ec);
}

Status WriteBundleManifest(const std::string& dir, const BundleManifest& m) {
  proto::BundleModel p;
  ToProto(m, /*with_values=*/true, &p);
  std::string bytes;
  if (!p.SerializeToString(&bytes))
    return Status::Internal("cannot serialise the bundle model (over 2 GiB of dense weights?)");
  RETURN_IF_ERROR(WriteString(fs::path(dir) / kBundleModelFile, bytes));
  return WriteBundleManifestText(dir, m);
}

Status WriteBundleManifestText(const std::string& dir, const BundleManifest& m) {
  proto::BundleModel text;
  ToProto(m, /*with_values=*/false, &text);
  std::string s;
  google::protobuf::TextFormat::PrintToString(text, &s);
  return WriteString(fs::path(dir) / kBundleModelTextFile,
                     "# Human-readable copy of model.pb; dense values omitted.\n" + s);
}

StatusOr<BundleManifest> ReadBundleManifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kBundleModelFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path + " (not a ctrps bundle?)");
  proto::BundleModel p;
  if (!p.ParseFromIstream(&in))
    return Status::Corruption(path + ": not a valid BundleModel protobuf");
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why); };
  if (p.format_version() < kFormatVersionUncompressed || p.format_version() > kFormatVersionLatest)
    return bad("format_version " + std::to_string(p.format_version()) + ", this build reads " +
               std::to_string(kFormatVersionUncompressed) + " to " +
               std::to_string(kFormatVersionLatest));
  BundleManifest m;
  const proto::ModelSpec& ms = p.model();
  if (p.format_version() < kFormatVersionCompressed &&
      (ms.low_rank_size() > 0 || ms.emb_decode_dims_size() > 0))
    return bad("format_version " + std::to_string(p.format_version()) +
               " holds no compressed structure, but model.low_rank or model.emb_decode_dims is "
               "set (a version " + std::to_string(kFormatVersionCompressed) + " field)");
  if (p.format_version() < kFormatVersionSparse && p.has_sparse())
    return bad("format_version " + std::to_string(p.format_version()) +
               " holds no sparse parts, but sparse is set (a version " +
               std::to_string(kFormatVersionSparse) + " field)");
  ModelOptions& o = m.model;
  o.type = FromProto(ms.type());
  o.num_fields = ms.num_fields();
  o.emb_dims.assign(ms.emb_dims().begin(), ms.emb_dims().end());
  o.mlp_dims.assign(ms.mlp_dims().begin(), ms.mlp_dims().end());
  o.cross_layers = ms.cross_layers();
  o.cross_rank = ms.cross_rank();
  o.dlrm_interaction_cat = ms.dlrm_interaction_cat();
  o.num_dense_fields = ms.num_dense_fields();
  o.bottom_mlp_dims.assign(ms.bottom_mlp_dims().begin(), ms.bottom_mlp_dims().end());
  o.dropout = ms.dropout();
  o.seed = ms.seed();
  for (const proto::LowRankLayer& pr : ms.low_rank()) {
    if (!pr.has_layer() || !pr.has_rank())
      return bad("model.low_rank[" + std::to_string(o.low_rank.size()) +
                 "] lacks its layer or rank");
    o.low_rank.push_back({pr.layer(), pr.rank(), pr.relu()});
  }
  o.emb_decode_dims.assign(ms.emb_decode_dims().begin(), ms.emb_decode_dims().end());
  o.field_tables.assign(ms.field_tables().begin(), ms.field_tables().end());
  if (p.format_version() < kFormatVersionFields &&
      (ms.field_tables_size() > 0 || p.data().keep_fields_size() > 0))
    return bad("format_version " + std::to_string(p.format_version()) +
               " has no removed fields, but model.field_tables or data.keep_fields is set (a "
               "version " + std::to_string(kFormatVersionFields) + " field)");
  RETURN_IF_ERROR_CTX(o.Validate(), path + ": model");

  const proto::DataSpec& ds = p.data();
  m.data.parser.format = FromProto(ds.format());
  m.data.parser.hash_seed = ds.hash_seed();
  m.data.parser.criteo_integer_encoding =
      ds.integer_encoding() == proto::SCALE ? IntegerEncoding::kScale : IntegerEncoding::kLogBucket;
  m.data.parser.libffm_num_fields = ds.libffm_num_fields();
  m.data.field_names.assign(ds.field_names().begin(), ds.field_names().end());
  m.data.parser.keep_fields.assign(ds.keep_fields().begin(), ds.keep_fields().end());
  if (m.data.parser.keep_fields != o.field_tables)
    return bad("data.keep_fields and model.field_tables differ: the parser would not yield the "
               "model's fields");
  if (static_cast<int>(m.data.field_names.size()) != o.num_fields)
    return bad("data.field_names has " + std::to_string(m.data.field_names.size()) + " names for " +
               std::to_string(o.num_fields) + " fields");

  for (const proto::DenseTensor& pt : p.dense()) {
    DenseTensor t;
    t.name = pt.name();
    t.rows = pt.rows();
    t.cols = pt.cols();
    const size_t n = static_cast<size_t>(t.rows) * t.cols;
    if (t.rows < 0 || t.cols < 0 || pt.values_f32().size() != n * sizeof(float))
      return bad("dense tensor '" + t.name + "' is " + std::to_string(t.rows) + " x " +
                 std::to_string(t.cols) + " but holds " + std::to_string(pt.values_f32().size()) +
                 " bytes");
    if (pt.has_crc32() && Crc32(pt.values_f32()) != pt.crc32())
      return bad("dense tensor '" + t.name + "': checksum mismatch (the file is corrupt)");
    t.values.resize(n);
    std::memcpy(t.values.data(), pt.values_f32().data(), n * sizeof(float));
    m.dense.push_back(std::move(t));
  }
  for (const proto::TableEntry& pt : p.tables()) {
    TableEntry t;
    t.table_id = pt.table_id();
    t.file = pt.file();
    t.width = pt.width();
    t.rows = pt.rows();
    t.dtype = static_cast<TableDtype>(pt.dtype());
    t.crc32 = pt.crc32();
    t.file_bytes = pt.file_bytes();
    t.init_zero_prefix = pt.init_zero_prefix();
    if (t.width < 1 || t.width > (1 << 16))
      return bad("table " + std::to_string(t.table_id) + " has width " + std::to_string(t.width) +
                 ", outside [1, 65536]");
    if (pt.layout() == proto::SPARSE_ROWS) {
      if (p.format_version() < kFormatVersionSparse)
        return bad("table " + std::to_string(t.table_id) + " has layout SPARSE_ROWS, a version " +
                   std::to_string(kFormatVersionSparse) + " field, in format_version " +
                   std::to_string(p.format_version()));
      t.layout = TableEntry::Layout::kSparseRows;
      t.nnz = pt.nnz();
    } else if (pt.layout() != proto::DENSE_ROWS) {
      return bad("table " + std::to_string(pt.table_id()) + " has unknown layout " +
                 std::to_string(pt.layout()));
    }
    if (pt.key_encoding() == proto::KEYS_PACKED) {
      if (p.format_version() < kFormatVersionPackedKeys)
        return bad("table " + std::to_string(t.table_id) +
                   " has key_encoding KEYS_PACKED, a version " +
                   std::to_string(kFormatVersionPackedKeys) + " field, in format_version " +
                   std::to_string(p.format_version()));
      t.key_encoding = KeyEncoding::kPacked;
    } else if (pt.key_encoding() != proto::KEYS_U64) {
      return bad("table " + std::to_string(t.table_id) + " has unknown key_encoding " +
                 std::to_string(pt.key_encoding()));
    }
    if (t.init_zero_prefix < 0 || t.init_zero_prefix > t.width)
      return bad("table " + std::to_string(t.table_id) + " has init_zero_prefix " +
                 std::to_string(t.init_zero_prefix) + " outside [0, width " +
                 std::to_string(t.width) + "]");
    if (t.table_id != o.TableOf(static_cast<int>(m.tables.size())))
      return bad("tables must be ordered by field, each with its field's table id; entry " +
                 std::to_string(m.tables.size()) + " has table_id " + std::to_string(t.table_id));
    if (t.file.empty() || t.file.find('/') != std::string::npos)
      return bad("table " + std::to_string(t.table_id) + " has a bad file name '" + t.file + "'");
    m.tables.push_back(std::move(t));
  }
  if (static_cast<int>(m.tables.size()) != o.num_fields)
    return bad(std::to_string(m.tables.size()) + " tables for " + std::to_string(o.num_fields) +
               " fields");
  if (p.unknown_keys().policy() == proto::KEY_SEEDED_INIT) {
    m.unknown_keys.policy = UnknownKeyRows::Policy::kKeySeededInit;
    m.unknown_keys.init_seed = p.unknown_keys().init_seed();
    m.unknown_keys.init_scale = p.unknown_keys().init_scale();
  }
  m.compression_method = p.compression().method();
  m.source = p.source();
  if (p.has_sparse()) RETURN_IF_ERROR_CTX(ReadSparseParts(p.sparse(), &m), path);
  return m;
}

}  // namespace ctrps::worker::serve
