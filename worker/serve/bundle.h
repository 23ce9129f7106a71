// A serving bundle: a trained model as a self-contained directory that the
// inference engine loads (see bundle.proto for the on-disk format and its
// documentation). These are plain C++ mirrors of the protobuf messages, so
// no generated type leaves this module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/data/line_parser.h"
#include "worker/nn/model.h"
#include "worker/serve/sparse_kernels.h"

namespace ctrps::worker::serve {

// Persisted as proto TableDtype: never renumber.
enum class TableDtype : uint32_t { kFloat32 = 0, kFloat16 = 1, kInt8 = 2 };
const char* TableDtypeName(TableDtype t);
// "fp32"/"float32", "fp16"/"float16", "int8"; InvalidArgument otherwise.
StatusOr<TableDtype> ParseTableDtype(const std::string& name);

// How a table file stores its keys (key_index.h). Persisted as proto
// KeyEncoding: never renumber.
enum class KeyEncoding : uint32_t { kU64 = 0, kPacked = 1 };

// How raw lines become keys: the parser options plus the field names.
struct DataSpec {
  ParserOptions parser;
  std::vector<std::string> field_names;
};

struct DenseTensor {
  std::string name;
  int rows = 0, cols = 0;
  std::vector<float> values;  // column-major
};

// How the engine fills the row of a key absent from its table.
struct UnknownKeyRows {
  enum class Policy : uint32_t { kZero = 0, kKeySeededInit = 1 };  // persisted: never renumber
  Policy policy = Policy::kZero;
  uint64_t init_seed = 0;    // kKeySeededInit: the training job's embedding seed
  float init_scale = 0.01f;  // kKeySeededInit: values uniform in [-scale, scale]
};

struct TableEntry {
  int table_id = 0;
  std::string file;  // relative to the bundle dir
  int width = 0;
  uint64_t rows = 0;
  TableDtype dtype = TableDtype::kFloat32;
  uint32_t crc32 = 0;
  uint64_t file_bytes = 0;
  int init_zero_prefix = 0;  // kKeySeededInit: leading floats of a new row that are 0
  // Persisted as proto TableLayout: never renumber.
  enum class Layout : uint32_t { kDenseRows = 0, kSparseRows = 1 };
  Layout layout = Layout::kDenseRows;
  uint64_t nnz = 0;  // kSparseRows: stored values
  KeyEncoding key_encoding = KeyEncoding::kU64;
};

// A pruned MLP weight ("<layer>.weight") stored by its non-zeros.
struct SparseWeight {
  std::string layer;  // "mlp.1"
  CsrMatrix csr;      // out x in
};

// The surviving field pairs of a pruned FwFM's R: r_ij = (R_ij + R_ji) / 2 != 0, i < j.
struct FieldPairList {
  std::string tensor;  // "fwfm.r"; empty: none stored
  int num_fields = 0;
  std::vector<uint16_t> first, second;  // i < j, ascending by (i, j)
  std::vector<float> values;
};

// The sparse parts of a pruned model (bundle format 3). The manifest's
// `dense` still lists every tensor, these included (expanded with zeros), so
// the model loads as any other; the writer leaves the covered dense tensors
// out of model.pb.
struct SparseParts {
  std::vector<SparseWeight> weights;
  FieldPairList pairs;
  bool empty() const { return weights.empty() && pairs.tensor.empty(); }
};

struct BundleManifest {
  ModelOptions model;
  DataSpec data;
  std::vector<DenseTensor> dense;
  std::vector<TableEntry> tables;
  UnknownKeyRows unknown_keys;
  std::string compression_method;  // empty: uncompressed
  SparseParts sparse;              // pruned models: empty when dense
  std::string source;
};

// The bundle's model file names.
inline constexpr char kBundleModelFile[] = "model.pb";
inline constexpr char kBundleModelTextFile[] = "model.pbtxt";

// True if `dir` looks like a bundle (has model.pb).
bool IsBundleDir(const std::string& dir);

// Writes model.pb and model.pbtxt into dir.
[[nodiscard]] Status WriteBundleManifest(const std::string& dir, const BundleManifest& m);
// Writes only model.pbtxt (structure and data format, no dense values), e.g.
// beside an ONNX export so tools know how to turn raw lines into its inputs.
[[nodiscard]] Status WriteBundleManifestText(const std::string& dir, const BundleManifest& m);
// Reads and validates dir/model.pb (model options, tensor sizes, one table
// per field). Corruption / InvalidArgument naming the file and the field.
StatusOr<BundleManifest> ReadBundleManifest(const std::string& dir);

}  // namespace ctrps::worker::serve
