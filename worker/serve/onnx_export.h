// ONNX export: the model as an ONNX graph (opset 13, checked with Debian's
// libonnx checker) plus a vocabulary file mapping keys to row indices.
//
// Output directory:
//   model.onnx   inputs  "row_index" int64 [B, F]: each field's row in the
//                        concatenated table (0 = the all-zero row of unknown keys)
//                        "value"     float [B, F]: each field's value (1 for
//                        categorical features)
//                outputs "logit" float [B], "probability" float [B]
//   vocab.bin    the key -> row index map (format in OnnxVocabulary below)
//   model.pbtxt  the model's structure and data format as text (bundle.proto's
//                BundleModel without dense values), so tools know how raw
//                lines become the inputs
//
// Compressed models export as they serve natively: low-rank layers as two
// Gemm nodes, embedding decoders as MatMul nodes over the stored
// coordinates (the table holds k coordinates per field), and decoders that
// feed an MLP's first layer folded into it (Model::PrepareForServing).
//
// Unknown keys (row index 0) read as zero rows, like a native bundle
// exported with UnknownKeyRows::Policy::kZero (`--unknown-keys zero`).
//
// The graph holds every table as one [1 + total rows, W] initializer
// (fields padded to the widest row), so the export is limited by
// protobuf's 2 GiB message size: fine for tests and benchmarks, not for
// production-size tables (use the native bundle there).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "ps/client.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"

namespace ctrps::worker::serve {

struct OnnxExportOptions {
  std::string out_dir;  // written atomically (<out_dir>.tmp, renamed)
  std::string source;   // recorded as the graph's doc string
};

// Unimplemented when this build has no libonnx.
[[nodiscard]] Status ExportOnnx(Model* model, ps::EmbeddingClient* source, const DataSpec& data,
                                const OnnxExportOptions& options);

// vocab.bin: "CTRPSVOC", uint32 version 1, uint32 F, then per field uint64
// count and uint64 base (its first row index), then each field's sorted
// keys (uint64), then a uint32 crc32 (zlib) of everything before it.
// Field f's i-th key has row index base_f + i; unknown keys map to 0.
class OnnxVocabulary {
 public:
  [[nodiscard]] static StatusOr<OnnxVocabulary> Load(const std::string& path);
  // keys: per field, sorted; writes vocab.bin.
  [[nodiscard]] static Status Write(const std::string& path,
                                    const std::vector<std::vector<Key>>& keys);

  int num_fields() const { return static_cast<int>(bases_.size()); }
  int64_t RowIndex(int field, Key key) const;
  // The graph's inputs for a batch: row_index and value, both B x F row-major.
  void MapBatch(const Batch& batch, std::vector<int64_t>* row_index,
                std::vector<float>* value) const;

 private:
  std::vector<uint64_t> bases_;
  std::vector<std::vector<Key>> keys_;
};

}  // namespace ctrps::worker::serve
