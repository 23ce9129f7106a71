// Inference: the native engine (worker/serve) against ONNX Runtime on the
// same exported model, DeepFM in the Criteo shape (39 fields, embedding 16,
// MLP 400-400-400, ~1.6M embedding rows), one compute thread each:
//   - single-row latency p50/p99 (one example per call, key lookups included
//     on the native side; ORT gets row indices already mapped through the
//     vocabulary, outside its timing, and pays node's N-API call overhead),
//   - batch-1024 throughput (rows/s).
// The ORT side runs bench/ort_bench.js under node (npm's onnxruntime-node,
// launch/deps.sh); without node it is skipped and only native figures print.
// The native engine is also timed on fp16 and int8 tables.
//
// --compressed: the same DeepFM against its AFM-compressed form in the same
// run (embeddings 16 -> 4 coordinates with per-field decoders, MLP layers
// mlp.1 and mlp.2 at rank 64; random, well-scaled weights: latency does not
// depend on their values), both native and under ONNX Runtime, with bundle
// bytes and the compressed/uncompressed ratios (the target: single-
// row p50 at most 0.6x).
//
// --sparse: a pruned DeepFwFM (DeepLight, COMPRESSION.md section 3; 39 fields,
// emb 10, MLP 400-400-400, random weights pruned by magnitude) at the
// paper's setting (MLP 90%, R 90%, embeddings 40%) and at MLP 95/98/99%
// (R 90%, embeddings 40%): bundle bytes, single-row p50/p99 and batch-1024
// rows/s of the sparse engine (bundle format 3) against the dense engine on
// the same weights in the same run (interleaved), ONNX Runtime on the dense
// graph of the same model; then what limits the sparse kernels (non-zeros/s
// against a streaming read and the dense GEMM rate, same run) and the kernel
// table behind the formats (sparse_kernels.h).
//
//   inference_bench [--compressed | --sparse] [work_dir=/tmp/ctrps_inference_bench] [single_rows=20000]
//                   [batch_seconds=3]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/hash.h"
#include "tests/worker/serve/prune_util.h"
#include "common/logging.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/nn/threading.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"
#include "worker/serve/sparse_kernels.h"
#include "worker/train/trainer.h"

using namespace ctrps;
using namespace ctrps::worker;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFields = 39, kDim = 16, kBatch = 1024;

// Criteo-like cardinalities (bench/train_bench.cc's), capped at 200k rows so
// the ONNX graph (every table is one initializer) stays well under 2 GiB.
int Vocab(int f) {
  static const int kV[] = {
      50,   100,   80,      60,     120,  300,  90,    70,      200, 10,    40,     30,      150,
      1400, 550,   2000000, 500000, 300,  20,   12000, 600,     3,   90000, 5000,   3000000, 3000,
      26,   10000, 2000000, 10,     5000, 2000, 4,     1000000, 15,  15,    200000, 90,      80000};
  return std::min(kV[f], 200000);
}

Key KeyOf(int f, int v) { return MakeKey(f, Mix64(static_cast<uint64_t>(v) * 977 + f)); }

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "inference_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

ModelOptions DeepFm() {
  ModelOptions mo;
  mo.type = ModelType::kDeepFM;
  mo.num_fields = kFields;
  mo.emb_dims.assign(kFields, kDim);
  mo.mlp_dims = {400, 400, 400};
  return mo;
}

// The compressed DeepFM of the --compressed mode (COMPRESSION.md section 2).
constexpr int kCompressedDim = 4, kCompressedRank = 64;
ModelOptions CompressedDeepFm() {
  ModelOptions mo = DeepFm();
  mo.emb_dims.assign(kFields, kCompressedDim);
  mo.emb_decode_dims.assign(kFields, kDim);
  mo.low_rank = {{"mlp.1", kCompressedRank, false}, {"mlp.2", kCompressedRank, false}};
  return mo;
}

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
  Source(ModelOptions mo, bool tiny_lr, float row_sd = 0.05f) {
    if (tiny_lr) {
      mo = ModelOptions();
      mo.type = ModelType::kLR;
      mo.num_fields = kFields;
      mo.emb_dims.assign(kFields, 0);
    }
    model = std::move(NewModel(mo)).value();
    TrainerOptions to;
    Trainer trainer(to, model.get(), nullptr, client.get(), nullptr);
    Check(trainer.DeclareTables(), "declaring tables");
    std::mt19937_64 rng(1);
    std::normal_distribution<float> nd(0.0f, row_sd);
    for (int f = 0; f < kFields; ++f) {
      const int V = tiny_lr ? 1 : Vocab(f), w = model->RowWidth(f);
      std::vector<Key> keys(V);
      std::vector<float> vals(static_cast<size_t>(V) * w);
      for (int v = 0; v < V; ++v) keys[v] = KeyOf(f, v);
      for (float& x : vals) x = nd(rng);
      Check(client->LoadRows(f, keys.data(), keys.size(), vals.data()), "loading rows");
      rows += V;
    }
  }
};

// Zipf-keyed queries; about 2% of keys were never trained.
Batch MakeQueries(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Batch b;
  b.num_fields = kFields;
  b.Reserve(n);
  for (int i = 0; i < n; ++i) {
    for (int f = 0; f < kFields; ++f) {
      const double x = std::pow(u(rng), 1.0 / (1.0 - 1.1));
      const int v = static_cast<int>(std::fmin(x, Vocab(f))) - 1;
      b.keys.push_back(u(rng) < 0.02 ? MakeKey(f, rng()) : KeyOf(f, v));
      b.values.push_back(1.0f);
    }
    b.labels.push_back(0.0f);
  }
  return b;
}

Batch Slice(const Batch& all, int begin, int n) {
  Batch b;
  b.num_fields = all.num_fields;
  const size_t F = all.num_fields;
  b.labels.assign(all.labels.begin() + begin, all.labels.begin() + begin + n);
  b.keys.assign(all.keys.begin() + begin * F, all.keys.begin() + (begin + n) * F);
  b.values.assign(all.values.begin() + begin * F, all.values.begin() + (begin + n) * F);
  return b;
}

struct Figures {
  double p50_us = 0, p99_us = 0, batch_rows_per_s = 0;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

Figures TimeNative(serve::InferenceEngine* e, const Batch& q, int single_rows, double batch_s,
                   std::vector<float>* batch_out) {
  Figures r;
  const int F = kFields;
  volatile float sink = 0;
  for (int i = 0; i < 1000; ++i)  // warm-up
    sink = sink + e->PredictRow(&q.keys[static_cast<size_t>(i) * F],
                                &q.values[static_cast<size_t>(i) * F]);
  std::vector<double> lat(single_rows);
  for (int i = 0; i < single_rows; ++i) {
    const size_t row = static_cast<size_t>(i % q.size()) * F;
    const auto t0 = Clock::now();
    sink = sink + e->PredictRow(&q.keys[row], &q.values[row]);
    lat[i] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  }
  r.p50_us = Percentile(lat, 0.50);
  r.p99_us = Percentile(lat, 0.99);
  std::vector<Batch> batches;
  for (int b = 0; b + kBatch <= q.size(); b += kBatch) batches.push_back(Slice(q, b, kBatch));
  std::vector<float> out(kBatch);
  e->PredictBatch(batches[0], out.data());  // warm-up
  if (batch_out != nullptr) {
    batch_out->clear();
    for (const Batch& b : batches) {
      e->PredictBatchLogits(b, out.data());
      batch_out->insert(batch_out->end(), out.begin(), out.end());
    }
  }
  int64_t rows = 0;
  const auto t0 = Clock::now();
  double s = 0;
  for (size_t i = 0; s < batch_s; ++i) {
    e->PredictBatch(batches[i % batches.size()], out.data());
    rows += kBatch;
    s = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  r.batch_rows_per_s = rows / s;
  return r;
}

// Runs bench/ort_bench.js; false (with a reason on stderr) if it cannot.
bool TimeOrt(const std::string& dir, const std::string& model, const Batch& q, int single_rows,
             double batch_s, Figures* r, std::vector<float>* batch_out) {
  const std::string src = CTRPS_SOURCE_DIR;
  if (std::system(("cd '" + src + "' && node -e \"require('onnxruntime-node')\" >/dev/null 2>&1")
                      .c_str()) != 0) {
    std::fprintf(stderr,
                 "inference_bench: node or onnxruntime-node missing (launch/deps.sh); "
                 "ONNX Runtime skipped\n");
    return false;
  }
  auto vocab = serve::OnnxVocabulary::Load(dir + "/" + model + "/vocab.bin");
  Check(vocab.status(), "loading vocab.bin");
  std::vector<int64_t> idx;
  std::vector<float> val;
  vocab->MapBatch(q, &idx, &val);
  {
    std::ofstream in(dir + "/queries.bin", std::ios::binary);
    in.write(reinterpret_cast<const char*>(idx.data()), idx.size() * 8);
    in.write(reinterpret_cast<const char*>(val.data()), val.size() * 4);
  }
  const std::string cmd = "node '" + src + "/bench/ort_bench.js' '" + dir + "/" + model +
                          "/model.onnx' '" + dir + "/queries.bin' " + std::to_string(q.size()) +
                          " " + std::to_string(kFields) + " " + std::to_string(single_rows) + " " +
                          std::to_string(kBatch) + " " + std::to_string(batch_s) + " '" + dir +
                          "/ort_logits.bin'";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return false;
  char line[512];
  bool ok = false;
  while (std::fgets(line, sizeof line, p) != nullptr)
    if (std::sscanf(line, "ort p50_us=%lf p99_us=%lf batch_rows_per_s=%lf", &r->p50_us, &r->p99_us,
                    &r->batch_rows_per_s) == 3)
      ok = true;
  if (pclose(p) != 0 || !ok) {
    std::fprintf(stderr, "inference_bench: %s failed\n", cmd.c_str());
    return false;
  }
  std::ifstream o(dir + "/ort_logits.bin", std::ios::binary);
  batch_out->resize((q.size() / kBatch) * kBatch);
  o.read(reinterpret_cast<char*>(batch_out->data()), batch_out->size() * 4);
  return o.good();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

serve::DataSpec FieldNames() {
  serve::DataSpec data;
  for (int f = 0; f < kFields; ++f) data.field_names.push_back("f" + std::to_string(f));
  return data;
}

// --compressed: the DeepFM against its compressed form, same queries, same run.
int RunCompressed(const std::string& dir, int single_rows, double batch_s) {
  const auto t0 = Clock::now();
  struct Variant {
    Variant(const char* n, ModelOptions o, float sd) : name(n), options(std::move(o)), row_sd(sd) {}
    const char* name;
    ModelOptions options;
    float row_sd;  // the coordinates are wider-spread than the full rows, as projections are
    uint64_t rows = 0, bundle_bytes = 0, dense_floats = 0, table_floats = 0;
    Figures native, ort;
    std::vector<float> native_logits, ort_logits;
    bool has_ort = false;
  };
  Variant v[2] = {{"uncompressed", DeepFm(), 0.05f}, {"compressed", CompressedDeepFm(), 0.1f}};
  const serve::DataSpec data = FieldNames();
  // The compressed model with fp16 tables too (an export option; the fp32
  // figures are the like-for-like ones): the keys weigh more in a bundle of
  // narrow rows.
  const std::string fp16_dir = dir + "/bundle_compressed_fp16";
  uint64_t fp16_bytes = 0;
  Figures fp16;
  for (Variant& x : v) {
    Source src(x.options, /*tiny_lr=*/false, x.row_sd);
    serve::ExportOptions o;
    if (&x == &v[1]) {
      o.out_dir = fp16_dir;
      o.table_dtype = serve::TableDtype::kFloat16;
      Check(serve::ExportBundle(src.model.get(), src.client.get(), data, o), "exporting fp16");
      fp16_bytes = DirBytes(fp16_dir);
      o.table_dtype = serve::TableDtype::kFloat32;
    }
    o.out_dir = dir + "/bundle_" + x.name;
    Check(serve::ExportBundle(src.model.get(), src.client.get(), data, o), "exporting a bundle");
    serve::OnnxExportOptions oo;
    oo.out_dir = dir + "/onnx_" + x.name;
    oo.source = "inference_bench --compressed";
    Check(serve::ExportOnnx(src.model.get(), src.client.get(), data, oo), "exporting ONNX");
    x.rows = src.rows;
    x.bundle_bytes = DirBytes(o.out_dir);
    x.dense_floats = src.model->dense_size();
    for (int f = 0; f < kFields; ++f)
      x.table_floats += static_cast<uint64_t>(Vocab(f)) * src.model->RowWidth(f);
  }
  const double setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const Batch q = MakeQueries(std::max(single_rows, 20 * kBatch), 7);
  std::printf(
      "inference_bench --compressed: DeepFM, 39 fields, MLP 400-400-400, %.2fM rows, emb %d "
      "vs compressed (emb %d -> %d coordinates + decoders, mlp.1 and mlp.2 at rank %d), "
      "1 thread, %d single-row calls, batch %d (setup %.1fs)\n\n",
      v[0].rows / 1e6, kDim, kDim, kCompressedDim, kCompressedRank, single_rows, kBatch, setup_s);
  // Two interleaved rounds per engine, the better figures kept, so a noisy
  // moment on the machine does not land on one side only.
  auto keep_best = [](int round, const Figures& f, Figures* best) {
    if (round == 0 || f.p50_us < best->p50_us) best->p50_us = f.p50_us;
    if (round == 0 || f.p99_us < best->p99_us) best->p99_us = f.p99_us;
    best->batch_rows_per_s = std::max(best->batch_rows_per_s, f.batch_rows_per_s);
  };
  for (int round = 0; round < 2; ++round) {
    for (Variant& x : v) {
      auto e = serve::InferenceEngine::Open(dir + "/bundle_" + x.name);
      Check(e.status(), "opening a bundle");
      keep_best(round,
                TimeNative(e->get(), q, single_rows, batch_s,
                           round == 0 ? &x.native_logits : nullptr),
                &x.native);
    }
    auto e = serve::InferenceEngine::Open(fp16_dir);
    Check(e.status(), "opening the fp16 bundle");
    keep_best(round, TimeNative(e->get(), q, single_rows, batch_s, nullptr), &fp16);
  }
  for (Variant& x : v)
    x.has_ort = TimeOrt(dir, std::string("onnx_") + x.name, q, single_rows, batch_s, &x.ort,
                        &x.ort_logits);

  std::printf("%-26s %12s %12s %10s %10s %16s\n", "engine", "bundle MB", "params M", "p50 us",
              "p99 us", "batch rows/s");
  for (const Variant& x : v)
    std::printf("%-26s %12.1f %12.2f %10.1f %10.1f %16.0f\n",
                (std::string("native ") + x.name).c_str(), x.bundle_bytes / 1e6,
                (x.dense_floats + x.table_floats) / 1e6, x.native.p50_us, x.native.p99_us,
                x.native.batch_rows_per_s);
  std::printf("%-26s %12.1f %12s %10.1f %10.1f %16.0f\n", "native compressed fp16",
              fp16_bytes / 1e6, "", fp16.p50_us, fp16.p99_us, fp16.batch_rows_per_s);
  for (const Variant& x : v)
    if (x.has_ort)
      std::printf("%-26s %12s %12s %10.1f %10.1f %16.0f\n",
                  (std::string("onnxruntime-node ") + x.name).c_str(), "", "", x.ort.p50_us,
                  x.ort.p99_us, x.ort.batch_rows_per_s);
  const Variant &u = v[0], &c = v[1];
  std::printf(
      "\nratios compressed / uncompressed (native): single-row p50 %.2f (target <= 0.60), "
      "p99 %.2f, batch-1024 throughput %.2fx, bundle bytes %.2f (%.1fx smaller), "
      "parameters %.2f\n",
      c.native.p50_us / u.native.p50_us, c.native.p99_us / u.native.p99_us,
      c.native.batch_rows_per_s / u.native.batch_rows_per_s,
      double(c.bundle_bytes) / u.bundle_bytes, double(u.bundle_bytes) / c.bundle_bytes,
      double(c.dense_floats + c.table_floats) / (u.dense_floats + u.table_floats));
  std::printf(
      "compressed with fp16 tables / uncompressed fp32: single-row p50 %.2f, bundle bytes %.2f "
      "(%.1fx smaller)\n",
      fp16.p50_us / u.native.p50_us, double(fp16_bytes) / u.bundle_bytes,
      double(u.bundle_bytes) / fp16_bytes);
  if (u.has_ort && c.has_ort) {
    std::printf(
        "ratios compressed / uncompressed (ONNX Runtime): single-row p50 %.2f, p99 %.2f, "
        "batch-1024 throughput %.2fx\n",
        c.ort.p50_us / u.ort.p50_us, c.ort.p99_us / u.ort.p99_us,
        c.ort.batch_rows_per_s / u.ort.batch_rows_per_s);
    std::printf(
        "compressed, native vs ORT: single-row p50 %.2fx lower, batch-1024 throughput %.2fx "
        "higher\n",
        c.ort.p50_us / c.native.p50_us, c.native.batch_rows_per_s / c.ort.batch_rows_per_s);
  }
  for (const Variant& x : v) {
    if (!x.has_ort) continue;
    double max_diff = 0;
    for (size_t i = 0; i < std::min(x.ort_logits.size(), x.native_logits.size()); ++i)
      max_diff = std::max(max_diff, std::fabs(double(x.ort_logits[i]) - x.native_logits[i]));
    std::printf("max |logit difference| native vs ORT, %s, over %zu rows: %.2e\n", x.name,
                x.ort_logits.size(), max_diff);
  }
  return 0;
}


// ---- --sparse: pruned DeepFwFM (DeepLight, COMPRESSION.md section 3) ----

constexpr int kSparseDim = 10;

ModelOptions DeepFwFm() {
  ModelOptions mo;
  mo.type = ModelType::kDeepFwFM;
  mo.num_fields = kFields;
  mo.emb_dims.assign(kFields, kSparseDim);
  mo.mlp_dims = {400, 400, 400};
  return mo;
}

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Mean ns per call of f over about `seconds` (after one warm-up call).
template <typename Fn>
double NsPerCall(Fn&& f, double seconds = 0.3) {
  f();
  int64_t n = 0;
  const auto t0 = Clock::now();
  double s = 0;
  for (; s < seconds; s = Seconds(t0)) {
    for (int i = 0; i < 16; ++i) f();
    n += 16;
  }
  return s * 1e9 / n;
}

// Streaming read bandwidth (bytes/s): sums a buffer far larger than the caches.
double StreamReadBandwidth() {
  std::vector<float> buf(size_t{64} << 20, 1.0f);  // 256 MiB
  volatile float sink = 0;
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i < buf.size(); i += 8) {
      s0 += buf[i]; s1 += buf[i + 1]; s2 += buf[i + 2]; s3 += buf[i + 3];
      s4 += buf[i + 4]; s5 += buf[i + 5]; s6 += buf[i + 6]; s7 += buf[i + 7];
    }
    sink = sink + s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    best = std::max(best, buf.size() * 4.0 / Seconds(t0));
  }
  return best;
}

// The kernel table behind the choice of formats (sparse_kernels.h): one
// 400 x in layer at the DeepFwFM shapes, random unstructured non-zeros.
void KernelTable() {
  std::printf(
      "\nkernels on one layer (random unstructured non-zeros; ns per call, one example or a "
      "tile of %d):\n%-9s %7s %7s | %9s %9s %9s %9s | %11s %11s\n",
      serve::kSparseTile, "shape", "density", "nnz", "CSR SpMV", "SELL-8", "blocked8", "dense MV",
      "CSR tile", "dense tile");
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int cols : {390, 400})
    for (double density : {0.01, 0.02, 0.05, 0.10, 0.30}) {
      const int rows = 400;
      std::vector<float> w(static_cast<size_t>(rows) * cols);
      for (float& v : w) v = u(rng) < density ? nd(rng) : 0.0f;
      const serve::CsrMatrix c = serve::CsrMatrix::FromDense(w.data(), rows, cols);
      std::vector<float> bias(rows, 0.01f), x(cols), y(rows + 8), scratch(rows + 8),
          xt(static_cast<size_t>(cols) * serve::kSparseTile),
          yt(static_cast<size_t>(rows) * serve::kSparseTile);
      for (float& v : x) v = std::max(0.0f, nd(rng));
      for (float& v : xt) v = std::max(0.0f, nd(rng));
      const serve::Sell8Matrix s = serve::Sell8Matrix::FromCsr(c, bias.data());
      const serve::Blocked8Matrix b = serve::Blocked8Matrix::FromDense(w.data(), rows, cols);
      volatile float sink = 0;
      const double csr = NsPerCall([&] {
        serve::SpMV(c, bias.data(), x.data(), true, y.data());
        sink = y[1];
      });
      const double sell = NsPerCall([&] {
        serve::Sell8MV(s, x.data(), true, scratch.data(), y.data());
        sink = y[1];
      });
      const double blk = NsPerCall([&] {
        serve::Blocked8MV(b, bias.data(), x.data(), true, y.data());
        sink = y[1];
      });
      const double dmv = NsPerCall([&] {
        serve::DenseMV(w.data(), rows, cols, bias.data(), x.data(), true, y.data());
        sink = y[1];
      });
      const double tile = NsPerCall([&] {
        serve::SpMMTile(c, bias.data(), xt.data(), true, yt.data());
        sink = yt[1];
      });
      const double dtile = NsPerCall([&] {
        serve::DenseMMTile(w.data(), rows, cols, bias.data(), xt.data(), true, yt.data());
        sink = yt[1];
      }, 0.2);
      char shape[32];
      std::snprintf(shape, sizeof shape, "%dx%d", rows, cols);
      std::printf("%-9s %7.2f %7llu | %9.0f %9.0f %9.0f %9.0f | %11.0f %11.0f\n", shape, density,
                  static_cast<unsigned long long>(c.nnz()), csr, sell, blk, dmv, tile, dtile);
    }
  std::printf(
      "(blocked8 = 8 x 1 blocks of outputs per input column, vectorised, zero inputs skipped; "
      "CSR tile = %d examples feature-major, 8 AVX2 accumulators per output)\n",
      serve::kSparseTile);
}

// What limits the sparse kernels on the 99% model: their non-zeros per second
// against the streaming bandwidth and the dense GEMM rate, same run.
void KernelLimits(Model* model) {
  serve::BundleManifest m = serve::DescribeModel(model, FieldNames());
  std::vector<serve::CsrMatrix> layers;
  std::vector<std::vector<float>> biases, dense;
  std::vector<std::pair<int, int>> shapes;
  uint64_t nnz = 0, cells = 0;
  for (int l = 0; l < 3; ++l) {
    const std::string name = "mlp." + std::to_string(l);
    for (const serve::DenseTensor& t : m.dense) {
      if (t.name == name + ".weight") {
        layers.push_back(serve::CsrMatrix::FromDense(t.values.data(), t.rows, t.cols));
        dense.push_back(t.values);
        shapes.push_back({t.rows, t.cols});
        nnz += layers.back().nnz();
        cells += static_cast<uint64_t>(t.rows) * t.cols;
      }
      if (t.name == name + ".bias") biases.push_back(t.values);
    }
  }
  std::vector<serve::Sell8Matrix> sell;
  for (size_t l = 0; l < layers.size(); ++l)
    sell.push_back(serve::Sell8Matrix::FromCsr(layers[l], biases[l].data()));
  std::mt19937_64 rng(9);
  std::normal_distribution<float> nd(0, 0.05f);
  std::vector<float> x(400 + 8), h0(408), h1(408), scratch(408);
  for (int i = 0; i < 390; ++i) x[i] = nd(rng);
  std::vector<float> xt(400 * serve::kSparseTile), t0(400 * serve::kSparseTile),
      t1(400 * serve::kSparseTile);
  for (float& v : xt) v = nd(rng);
  volatile float sink = 0;
  const double row_ns = NsPerCall([&] {
    serve::Sell8MV(sell[0], x.data(), true, scratch.data(), h0.data());
    serve::Sell8MV(sell[1], h0.data(), true, scratch.data(), h1.data());
    serve::Sell8MV(sell[2], h1.data(), true, scratch.data(), h0.data());
    sink = h0[0];
  });
  const double tile_ns = NsPerCall([&] {
    serve::SpMMTile(layers[0], biases[0].data(), xt.data(), true, t0.data());
    serve::SpMMTile(layers[1], biases[1].data(), t0.data(), true, t1.data());
    serve::SpMMTile(layers[2], biases[2].data(), t1.data(), true, t0.data());
    sink = t0[0];
  });
  // Dense GEMM (Eigen, one thread) on the same layers, batch 1024, and GEMV.
  MatrixF X = MatrixF::Random(390, kBatch), H0(400, kBatch), H1(400, kBatch);
  std::vector<Eigen::Map<const MatrixF>> W;
  for (size_t l = 0; l < dense.size(); ++l)
    W.emplace_back(dense[l].data(), shapes[l].first, shapes[l].second);
  const double gemm_ns = NsPerCall([&] {
    H0.noalias() = W[0] * X;
    H1.noalias() = W[1] * H0;
    H0.noalias() = W[2] * H1;
    sink = H0(0, 0);
  }, 1.0);
  VectorF xv = VectorF::Random(390), y0(400), y1(400);
  const double gemv_ns = NsPerCall([&] {
    y0.noalias() = W[0] * xv;
    y1.noalias() = W[1] * y0;
    y0.noalias() = W[2] * y1;
    sink = y0(0);
  });
  const double bw = StreamReadBandwidth();
  const uint64_t sell_entries =
      sell[0].padded_entries() + sell[1].padded_entries() + sell[2].padded_entries();
  const double row_nnz_s = nnz / (row_ns * 1e-9);
  const double tile_nnz_s = nnz * double(serve::kSparseTile) / (tile_ns * 1e-9);
  const double gemm_mac_s = cells * double(kBatch) / (gemm_ns * 1e-9);
  const double gemv_mac_s = cells / (gemv_ns * 1e-9);
  std::printf(
      "\nwhat limits the sparse MLP kernels (99%% model: mlp.0-2, %llu non-zeros of %llu, "
      "SELL-8 holds %llu entries with padding; weights %.0f KB as CSR, in cache):\n",
      static_cast<unsigned long long>(nnz), static_cast<unsigned long long>(cells),
      static_cast<unsigned long long>(sell_entries), nnz * 8 / 1e3);
  std::printf("  single row, SELL-8 SpMV, 3 layers: %8.0f ns = %6.2f G non-zeros/s\n", row_ns,
              row_nnz_s / 1e9);
  std::printf("  tile of %d, CSR SpMM, 3 layers:    %8.0f ns = %6.2f G non-zero MACs/s\n",
              serve::kSparseTile, tile_ns, tile_nnz_s / 1e9);
  std::printf("  dense GEMM (Eigen, batch %d):     %8.0f ns = %6.2f G MACs/s\n", kBatch, gemm_ns,
              gemm_mac_s / 1e9);
  std::printf("  dense GEMV (Eigen, one row):       %8.0f ns = %6.2f G MACs/s\n", gemv_ns,
              gemv_mac_s / 1e9);
  std::printf(
      "  streaming read: %.1f GB/s = %.2f G non-zeros/s if each non-zero's 8 bytes (value, "
      "index) came from memory\n",
      bw / 1e9, bw / 8 / 1e9);
  std::printf(
      "  -> single row at %.0f%% of the bandwidth bound and %.0f%% of the dense GEMV MAC rate; "
      "tile at %.0f%% of the dense GEMM MAC rate\n",
      100 * row_nnz_s / (bw / 8), 100 * row_nnz_s / gemv_mac_s, 100 * tile_nnz_s / gemm_mac_s);
}

int RunSparse(const std::string& dir, int single_rows, double batch_s) {
  const auto t_setup = Clock::now();
  struct Setting {
    const char* name;
    double mlp, pairs, emb;
    uint64_t dense_bytes = 0, sparse_bytes = 0, onnx_bytes = 0, mlp_nnz = 0, pairs_kept = 0;
    uint64_t emb_nnz = 0, emb_entries = 0, rows_dropped = 0;
    Figures dense, sparse, ort;
    bool has_ort = false;
    double max_diff_batch = 0, max_diff_row = 0, max_diff_ort = 0;
    std::string describe;
  };
  std::vector<Setting> settings = {{"paper (MLP 90%, R 90%, emb 40%)", 0.90, 0.90, 0.40},
                                   {"MLP 95%, R 90%, emb 40%", 0.95, 0.90, 0.40},
                                   {"MLP 98%, R 90%, emb 40%", 0.98, 0.90, 0.40},
                                   {"MLP 99%, R 90%, emb 40%", 0.99, 0.90, 0.40}};
  const serve::DataSpec data = FieldNames();
  const Batch q = MakeQueries(std::max(single_rows, 20 * kBatch), 7);
  std::unique_ptr<Model> model99;
  // One source: tables pruned once (the embeddings' 40% is common to every
  // setting); the dense weights are pruned per setting from the same init.
  Source src(DeepFwFm(), /*tiny_lr=*/false, 0.05f);
  const std::vector<float> init(src.model->dense_values(),
                                src.model->dense_values() + src.model->dense_size());
  Check(serve::testing::PruneByMagnitude(src.model.get(), src.client.get(), 0, 0, 0.40),
        "pruning the tables");
  for (size_t i = 0; i < settings.size(); ++i) {
    Setting& s = settings[i];
    std::copy(init.begin(), init.end(), src.model->dense_values());
    Check(serve::testing::PruneByMagnitude(src.model.get(), src.client.get(), s.mlp, s.pairs, 0),
          "pruning the model");
    serve::ExportOptions o;
    o.out_dir = dir + "/sparse_dense_" + std::to_string(i);
    o.sparse = false;
    Check(serve::ExportBundle(src.model.get(), src.client.get(), data, o), "exporting dense");
    s.dense_bytes = DirBytes(o.out_dir);
    o.out_dir = dir + "/sparse_sparse_" + std::to_string(i);
    o.sparse = true;
    Check(serve::ExportBundle(src.model.get(), src.client.get(), data, o), "exporting sparse");
    s.sparse_bytes = DirBytes(o.out_dir);
    auto manifest = serve::ReadBundleManifest(o.out_dir);
    Check(manifest.status(), "reading the sparse manifest");
    for (const serve::TableEntry& t : manifest->tables) {
      s.emb_nnz += t.nnz;
      s.rows_dropped += static_cast<uint64_t>(Vocab(t.table_id)) - t.rows;
      s.emb_entries += static_cast<uint64_t>(Vocab(t.table_id)) * t.width;
    }
    serve::OnnxExportOptions oo;
    oo.out_dir = dir + "/sparse_onnx_" + std::to_string(i);
    oo.source = "inference_bench --sparse";
    Check(serve::ExportOnnx(src.model.get(), src.client.get(), data, oo), "exporting ONNX");
    s.onnx_bytes = DirBytes(oo.out_dir);
    if (i + 1 == settings.size()) {
      model99 = std::move(NewModel(DeepFwFm())).value();
      std::copy_n(src.model->dense_values(), src.model->dense_size(), model99->dense_values());
    }
  }
  std::printf(
      "inference_bench --sparse: DeepFwFM, 39 fields, emb %d, MLP 400-400-400, %.2fM rows, "
      "random weights pruned by magnitude (tests/worker/serve/prune_util.h), 1 thread, %d "
      "single-row calls, batch %d, two interleaved rounds (better figures kept) (setup %.1fs)\n",
      kSparseDim, src.rows / 1e6, single_rows, kBatch, Seconds(t_setup));
  auto keep_best = [](int round, const Figures& f, Figures* best) {
    if (round == 0 || f.p50_us < best->p50_us) best->p50_us = f.p50_us;
    if (round == 0 || f.p99_us < best->p99_us) best->p99_us = f.p99_us;
    best->batch_rows_per_s = std::max(best->batch_rows_per_s, f.batch_rows_per_s);
  };
  for (size_t i = 0; i < settings.size(); ++i) {
    Setting& s = settings[i];
    auto de = serve::InferenceEngine::Open(dir + "/sparse_dense_" + std::to_string(i));
    Check(de.status(), "opening the dense bundle");
    auto se = serve::InferenceEngine::Open(dir + "/sparse_sparse_" + std::to_string(i));
    Check(se.status(), "opening the sparse bundle");
    s.describe = (*se)->DescribeSparsePath();
    std::vector<float> dl, sl;
    for (int round = 0; round < 2; ++round) {
      keep_best(round, TimeNative(de->get(), q, single_rows, batch_s, round == 0 ? &dl : nullptr),
                &s.dense);
      keep_best(round, TimeNative(se->get(), q, single_rows, batch_s, round == 0 ? &sl : nullptr),
                &s.sparse);
    }
    for (size_t k = 0; k < dl.size(); ++k)
      s.max_diff_batch = std::max(s.max_diff_batch, std::fabs(double(dl[k]) - sl[k]));
    for (int r = 0; r < 2000; ++r) {
      const size_t off = static_cast<size_t>(r) * kFields;
      s.max_diff_row = std::max(
          s.max_diff_row, std::fabs(double((*de)->PredictRowLogit(&q.keys[off], &q.values[off])) -
                                    (*se)->PredictRowLogit(&q.keys[off], &q.values[off])));
    }
    std::vector<float> ol;
    s.has_ort = TimeOrt(dir, "sparse_onnx_" + std::to_string(i), q, single_rows, batch_s, &s.ort,
                        &ol);
    for (size_t k = 0; s.has_ort && k < std::min(ol.size(), sl.size()); ++k)
      s.max_diff_ort = std::max(s.max_diff_ort, std::fabs(double(ol[k]) - sl[k]));
  }

  std::printf("\n%-32s %-14s %10s %9s %9s %14s %8s %8s\n", "setting", "engine", "bundle MB",
              "p50 us", "p99 us", "batch rows/s", "p50 x", "batch x");
  for (const Setting& s : settings) {
    std::printf("%-32s %-14s %10.1f %9.2f %9.2f %14.0f\n", s.name, "native dense",
                s.dense_bytes / 1e6, s.dense.p50_us, s.dense.p99_us, s.dense.batch_rows_per_s);
    std::printf("%-32s %-14s %10.1f %9.2f %9.2f %14.0f %7.1fx %7.1fx\n", "", "native sparse",
                s.sparse_bytes / 1e6, s.sparse.p50_us, s.sparse.p99_us, s.sparse.batch_rows_per_s,
                s.dense.p50_us / s.sparse.p50_us,
                s.sparse.batch_rows_per_s / s.dense.batch_rows_per_s);
    if (s.has_ort)
      std::printf("%-32s %-14s %10.1f %9.2f %9.2f %14.0f %7.2fx %7.2fx\n", "", "ORT dense graph",
                  s.onnx_bytes / 1e6, s.ort.p50_us, s.ort.p99_us, s.ort.batch_rows_per_s,
                  s.dense.p50_us / s.ort.p50_us, s.ort.batch_rows_per_s / s.dense.batch_rows_per_s);
  }
  std::printf("\n(p50 x, batch x: against the native dense engine on the same model)\n");
  for (const Setting& s : settings) {
    char ort_note[64] = "";
    if (s.has_ort) std::snprintf(ort_note, sizeof ort_note, ", ORT vs sparse %.1e", s.max_diff_ort);
    std::printf(
        "%s: sparse path %s; row entries kept %.1f%% (linear weights included; %llu rows with "
        "nothing left dropped); bundle %.2fx smaller; max |logit diff| sparse vs dense: batch "
        "%.1e, single row %.1e%s\n",
        s.name, s.describe.c_str(), 100.0 * s.emb_nnz / s.emb_entries,
        static_cast<unsigned long long>(s.rows_dropped), double(s.dense_bytes) / s.sparse_bytes,
        s.max_diff_batch, s.max_diff_row, ort_note);
  }
  const Setting& last = settings.back();
  std::printf(
      "\ntarget: MLP 99%% (R 90%%, emb 40%%) single-row p50 >= 10x faster than the dense "
      "engine: %.1fx (%s)\n",
      last.dense.p50_us / last.sparse.p50_us,
      last.dense.p50_us / last.sparse.p50_us >= 10 ? "met" : "NOT met");
  KernelLimits(model99.get());
  KernelTable();
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  ctrps::InitLogging("info");  // log lines to stderr, the tables to stdout
  const bool compressed = argc > 1 && std::string(argv[1]) == "--compressed";
  const bool sparse = argc > 1 && std::string(argv[1]) == "--sparse";
  if (compressed || sparse) {
    --argc;
    ++argv;
  }
  const std::string dir = argc > 1 ? argv[1] : "/tmp/ctrps_inference_bench";
  const int single_rows = argc > 2 ? std::atoi(argv[2]) : 20000;
  const double batch_s = argc > 3 ? std::atof(argv[3]) : 3.0;
  if (single_rows < 1000 || batch_s <= 0) {
    std::fprintf(stderr,
                 "usage: inference_bench [--compressed | --sparse] [work_dir] [single_rows>=1000] "
                 "[batch_seconds>0]\n");
    return 2;
  }
  SetNumThreads(1);
  std::filesystem::create_directories(dir);
  if (compressed) return RunCompressed(dir, single_rows, batch_s);
  if (sparse) return RunSparse(dir, single_rows, batch_s);
  const auto t0 = Clock::now();
  Source src;
  const serve::DataSpec data = FieldNames();
  // Unknown keys read as zero rows in both (the ONNX graph's convention).
  for (serve::TableDtype dt :
       {serve::TableDtype::kFloat32, serve::TableDtype::kFloat16, serve::TableDtype::kInt8}) {
    serve::ExportOptions o;
    o.out_dir = dir + "/bundle_" + serve::TableDtypeName(dt);
    o.table_dtype = dt;
    Check(serve::ExportBundle(src.model.get(), src.client.get(), data, o), "exporting the bundle");
  }
  serve::OnnxExportOptions oo;
  oo.out_dir = dir + "/onnx";
  oo.source = "inference_bench";
  Check(serve::ExportOnnx(src.model.get(), src.client.get(), data, oo), "exporting ONNX");
  {
    Source lr(/*tiny_lr=*/true);
    oo.out_dir = dir + "/onnx_floor";
    Check(serve::ExportOnnx(lr.model.get(), lr.client.get(), data, oo), "exporting ONNX (floor)");
  }
  const double setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const Batch q = MakeQueries(std::max(single_rows, 20 * kBatch), 7);

  std::printf(
      "inference_bench: DeepFM, 39 fields, emb 16, MLP 400-400-400, %.2fM rows, "
      "1 thread, %d single-row calls, batch %d (setup %.1fs)\n\n",
      src.rows / 1e6, single_rows, kBatch, setup_s);
  std::printf("%-22s %10s %10s %16s\n", "engine", "p50 us", "p99 us", "batch rows/s");
  std::vector<float> native_logits, ort_logits;
  Figures native;
  for (const char* dt : {"fp32", "fp16", "int8"}) {
    auto e = serve::InferenceEngine::Open(dir + "/bundle_" + dt);
    Check(e.status(), "opening the bundle");
    Figures f = TimeNative(e->get(), q, single_rows, batch_s,
                           std::string(dt) == "fp32" ? &native_logits : nullptr);
    if (std::string(dt) == "fp32") native = f;
    std::printf("%-22s %10.1f %10.1f %16.0f\n", (std::string("native ") + dt).c_str(), f.p50_us,
                f.p99_us, f.batch_rows_per_s);
  }
  Figures ort, floor;
  std::vector<float> unused;
  if (TimeOrt(dir, "onnx", q, single_rows, batch_s, &ort, &ort_logits) &&
      TimeOrt(dir, "onnx_floor", q, single_rows, 0.5, &floor, &unused)) {
    std::printf("%-22s %10.1f %10.1f %16.0f\n", "onnxruntime-node fp32", ort.p50_us, ort.p99_us,
                ort.batch_rows_per_s);
    std::printf("%-22s %10.1f %10.1f %16s\n", "  ORT call floor (*)", floor.p50_us, floor.p99_us,
                "");
    std::printf(
        "\n(*) the same inputs through a one-row-per-field LR graph: node + N-API + "
        "session.run overhead,\n    paid by every ORT call above; ORT p50 less this floor: "
        "%.1f us\n",
        ort.p50_us - floor.p50_us);
    double max_diff = 0;
    for (size_t i = 0; i < std::min(ort_logits.size(), native_logits.size()); ++i)
      max_diff = std::max(max_diff, std::fabs(double(ort_logits[i]) - native_logits[i]));
    std::printf(
        "\nratios native fp32 / ORT: single-row p50 latency %.2fx lower, p99 %.2fx lower, "
        "batch-1024 throughput %.2fx higher\n",
        ort.p50_us / native.p50_us, ort.p99_us / native.p99_us,
        native.batch_rows_per_s / ort.batch_rows_per_s);
    std::printf("max |logit difference| native vs ORT over %zu rows: %.2e\n", ort_logits.size(),
                max_diff);
  }
  return 0;
}
