// Shared by the inference_bench modes (bench/inference_bench.cc: the
// default and --compressed; bench/inference_bench_sparse.cc: --sparse): the
// Criteo-shape models and their tables, the queries, and the timing of the
// native engine and of ONNX Runtime (bench/ort_bench.js).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/keys.h"
#include "common/status.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/data/batch.h"
#include "worker/nn/model.h"
#include "worker/serve/bundle.h"
#include "worker/serve/engine.h"

namespace ctrps::worker::inference_bench {

using Clock = std::chrono::steady_clock;

inline constexpr int kFields = 39, kDim = 16, kBatch = 1024;

// Criteo-like cardinalities (bench/train_bench.cc's), capped at 200k rows so
// the ONNX graph (every table is one initializer) stays well under 2 GiB.
int Vocab(int f);
Key KeyOf(int f, int v);
// Exits with `what` and the status unless s is OK.
void Check(const Status& s, const char* what);
// DeepFM, 39 fields, emb 16, MLP 400-400-400.
ModelOptions DeepFm();

// A model with random dense weights (its initialisation) and every table
// fully populated with N(0, row_sd) rows. Default: the DeepFM. With tiny_lr:
// logistic regression with one row per field, whose ONNX graph measures
// ORT's fixed cost per call (node, N-API, session.run).
struct Source {
  std::unique_ptr<Model> model;
  std::unique_ptr<storage::EmbeddingStore> store = storage::NewMemoryStore();
  std::unique_ptr<ps::EmbeddingClient> client = ps::NewLocalClient(store.get());
  uint64_t rows = 0;
  explicit Source(bool tiny_lr = false) : Source(DeepFm(), tiny_lr) {}
  Source(ModelOptions mo, bool tiny_lr, float row_sd = 0.05f);
};

// Zipf-keyed queries; about 2% of keys were never trained.
Batch MakeQueries(int n, uint64_t seed);
// Examples [begin, begin + n) of all.
Batch Slice(const Batch& all, int begin, int n);

struct Figures {
  double p50_us = 0, p99_us = 0, batch_rows_per_s = 0;
};
double Percentile(std::vector<double> v, double q);
// Single-row p50/p99 over single_rows calls, then batch-kBatch rows/s for
// batch_s seconds; batch_out (if not null) gets the logits of every whole
// batch of q.
Figures TimeNative(serve::InferenceEngine* e, const Batch& q, int single_rows, double batch_s,
                   std::vector<float>* batch_out);
// Runs bench/ort_bench.js on dir/model; false (with a reason on stderr) if it cannot.
bool TimeOrt(const std::string& dir, const std::string& model, const Batch& q, int single_rows,
             double batch_s, Figures* r, std::vector<float>* batch_out);
uint64_t DirBytes(const std::string& dir);
// Field names f0 .. f38.
serve::DataSpec FieldNames();

// --sparse (inference_bench_sparse.cc).
int RunSparse(const std::string& dir, int single_rows, double batch_s);

}  // namespace ctrps::worker::inference_bench
