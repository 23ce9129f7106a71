// Export: a trained model into a serving bundle (bundle.proto) or an ONNX
// graph (onnx_export.h). The input is any model plus a row scan per table,
// so a saved model (worker/train/model_io.h) exports today and a checkpoint
// plugs in by offering the same two things: a Model with its dense weights
// and an EmbeddingClient whose ScanRows walks the checkpoint's shards.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ps/client.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"

namespace ctrps::worker::serve {

struct ExportOptions {
  // Output directory; written as <out_dir>.tmp and renamed into place, so a
  // bundle is whole or absent. An existing out_dir is replaced.
  std::string out_dir;
  // Element type of the table files (fp32 exact; fp16 halves and int8
  // quarters the table bytes, at some accuracy cost).
  TableDtype table_dtype = TableDtype::kFloat32;
  // How table files store their keys: packed (key_index.h; about 5 bytes a
  // key instead of 8 for million-row tables, lookups as fast; bundle format
  // 4), or 8-byte keys (the bundle keeps the lowest version that holds the
  // model, for readers built before format 4).
  KeyEncoding table_keys = KeyEncoding::kPacked;
  // Rows of keys absent from the tables: zero, or the key-seeded rows
  // training would create (the trainer's init seed and scale; then the
  // bundle scores exactly as `ctrps eval` of the saved model does).
  UnknownKeyRows unknown_keys;
  // Recorded in the bundle (e.g. the saved model's path).
  std::string source;
  // name -> contents, written beside the model (e.g. config.pbtxt).
  std::vector<std::pair<std::string, std::string>> extra_files;

  // Pruned models (DeepLight, COMPRESSION.md section 3): the sparse parts
  // are derived from the model's exact zeros, whatever pruned them, and
  // stored by their non-zeros (bundle format 3; a model with none stays
  // version 1 or 2). false: every part dense.
  bool sparse = true;
  // A full-rank MLP weight with at most this fraction non-zero is stored as
  // CSR (the bundle shrinks below about 0.66; the engine then picks sparse or
  // dense kernels per path by density, see engine.h).
  double sparse_weight_max_density = 0.5;
  // An FwFM R whose surviving pairs are at most this fraction of all F(F-1)/2
  // is stored as the list of those pairs (and served over them only).
  double sparse_pairs_max_density = 0.5;
  // A table is written with sparse rows when that file is at most this
  // fraction of the dense-row file's bytes (fp32 and fp16, width <= 64).
  double sparse_table_max_bytes_ratio = 0.9;
};

// The sparse parts of `model` (its exact zeros) under options' thresholds:
// CSR weights of sparse-enough full-rank MLP layers, the surviving FwFM pairs.
SparseParts DeriveSparseParts(Model* model, const ExportOptions& options);

// One table's rows sorted by key: keys[i]'s row is rows[i * width, (i+1) * width).
struct SortedRows {
  int width = 0;
  std::vector<Key> keys;
  std::vector<float> rows;
};

// Scans table `table` (row width `width`) from `source` and sorts it by key.
StatusOr<SortedRows> CollectTable(ps::EmbeddingClient* source, int table, int width);

// The manifest of `model` without tables: structure and dense weights by name.
BundleManifest DescribeModel(Model* model, const DataSpec& data);

// Writes a bundle of `model` with the rows of every field's table.
[[nodiscard]] Status ExportBundle(Model* model, ps::EmbeddingClient* source, const DataSpec& data,
                                  const ExportOptions& options);

// Helpers for writing an output directory atomically: creates <dir>.tmp
// (emptied) and returns its path; CommitDir renames it to dir.
StatusOr<std::string> BeginOutputDir(const std::string& dir);
[[nodiscard]] Status CommitOutputDir(const std::string& tmp, const std::string& dir);
[[nodiscard]] Status WriteWholeFile(const std::string& path, const std::string& bytes);

}  // namespace ctrps::worker::serve
