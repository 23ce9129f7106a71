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
// graph of the same model; then where one example's time goes at 99% (the
// compute after the lookups timed alone), what limits the sparse kernels
// (non-zeros/s against a streaming read and the dense GEMM rate, same run)
// and the kernel table behind the formats (sparse_kernels.h).
//
// Files: this one (main, the default mode and --compressed),
// inference_bench_sparse.cc (--sparse), inference_bench_util.cc (what the
// modes share, inference_bench.h).
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

#include "bench/inference_bench.h"
#include "common/logging.h"
#include "worker/nn/threading.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"

using namespace ctrps;
using namespace ctrps::worker;
using namespace ctrps::worker::inference_bench;

namespace {

// The compressed DeepFM of the --compressed mode (COMPRESSION.md section 2).
constexpr int kCompressedDim = 4, kCompressedRank = 64;
ModelOptions CompressedDeepFm() {
  ModelOptions mo = DeepFm();
  mo.emb_dims.assign(kFields, kCompressedDim);
  mo.emb_decode_dims.assign(kFields, kDim);
  mo.low_rank = {{"mlp.1", kCompressedRank, false}, {"mlp.2", kCompressedRank, false}};
  return mo;
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
