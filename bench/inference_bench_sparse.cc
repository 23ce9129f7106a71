// inference_bench --sparse (the mode's description: inference_bench.cc).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/inference_bench.h"
#include "tests/worker/serve/prune_util.h"
#include "worker/serve/exporter.h"
#include "worker/serve/onnx_export.h"
#include "worker/serve/sparse_engine.h"
#include "worker/serve/sparse_kernels.h"
#include "worker/serve/table_file.h"

namespace ctrps::worker::inference_bench {
namespace {

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
      serve::kSparseTile, "shape", "density", "nnz", "CSR SpMV",
      serve::kSellLanes == 16 ? "SELL-16" : "SELL-8", "blocked8", "dense MV", "CSR tile",
      "dense tile");
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int cols : {390, 400})
    for (double density : {0.01, 0.02, 0.05, 0.10, 0.30}) {
      const int rows = 400;
      std::vector<float> w(static_cast<size_t>(rows) * cols);
      for (float& v : w) v = u(rng) < density ? nd(rng) : 0.0f;
      const serve::CsrMatrix c = serve::CsrMatrix::FromDense(w.data(), rows, cols);
      std::vector<float> bias(rows, 0.01f), x(cols), y(rows + 8),
          scratch(serve::SellScratchFloats(rows)),
          xt(static_cast<size_t>(cols) * serve::kSparseTile),
          yt(static_cast<size_t>(rows) * serve::kSparseTile);
      for (float& v : x) v = std::max(0.0f, nd(rng));
      for (float& v : xt) v = std::max(0.0f, nd(rng));
      const serve::SellMatrix s = serve::SellMatrix::FromCsr(c, bias.data());
      const serve::Blocked8Matrix b = serve::Blocked8Matrix::FromDense(w.data(), rows, cols);
      volatile float sink = 0;
      const double csr = NsPerCall([&] {
        serve::SpMV(c, bias.data(), x.data(), true, y.data());
        sink = y[1];
      });
      const double sell = NsPerCall([&] {
        serve::SellMV(s, x.data(), true, scratch.data(), y.data());
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

// Where one example's time goes in the sparse engine: the compute after the
// lookups (value scaling, FwFM over the surviving pairs, the MLP) timed
// alone on rows looked up beforehand, against the engine's whole p50 (the
// rest is the fields' staged lookups and sparse-row decoding).
void RowSplit(const std::string& bundle, const Batch& q, int single_rows, double engine_p50_us) {
  auto m = serve::ReadBundleManifest(bundle);
  Check(m.status(), "reading the 99% manifest");
  std::vector<serve::MappedTable> tables;
  for (const serve::TableEntry& e : m->tables) {
    auto t = serve::MappedTable::Open(bundle + "/" + e.file, e);
    Check(t.status(), "mapping a table");
    tables.push_back(std::move(*t));
  }
  const std::unique_ptr<serve::SparseFactorPath> path = serve::SparseFactorPath::Build(*m);
  if (!path) return;
  serve::SparseFactorPath::Scratch scratch;
  path->InitScratch(&scratch);
  const int F = kFields, S = path->row_stride();
  const int n = std::min(single_rows, q.size());
  std::vector<float> rows(static_cast<size_t>(n) * F * S + 8, 0.0f);
  for (int i = 0; i < n; ++i)
    for (int f = 0; f < F; ++f)
      tables[f].Lookup(q.keys[static_cast<size_t>(i) * F + f],
                       &rows[(static_cast<size_t>(i) * F + f) * S]);
  volatile float sink = 0;
  std::vector<double> lat(n);
  for (int round = 0; round < 2; ++round)  // the first warms up
    for (int i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      sink = sink + path->Row(&rows[static_cast<size_t>(i) * F * S],
                              &q.values[static_cast<size_t>(i) * F], &scratch);
      lat[i] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    }
  const double row_p50 = Percentile(lat, 0.5);
  std::printf(
      "\nsingle row at 99%%, where the time goes: compute after the lookups (scaling, FwFM, "
      "MLP) p50 %.2f us of the engine's %.2f us; the 39 lookups and row decoding about %.2f us\n"
      "  (%s)\n",
      row_p50, engine_p50_us, engine_p50_us - row_p50, path->Describe().c_str());
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
  std::vector<serve::SellMatrix> sell;
  for (size_t l = 0; l < layers.size(); ++l)
    sell.push_back(serve::SellMatrix::FromCsr(layers[l], biases[l].data()));
  std::mt19937_64 rng(9);
  std::normal_distribution<float> nd(0, 0.05f);
  const size_t buf = static_cast<size_t>(serve::SellScratchFloats(400 + 8));
  std::vector<float> x(buf), h0(buf), h1(buf), scratch(buf);
  for (int i = 0; i < 390; ++i) x[i] = nd(rng);
  std::vector<float> xt(400 * serve::kSparseTile), t0(400 * serve::kSparseTile),
      t1(400 * serve::kSparseTile);
  for (float& v : xt) v = nd(rng);
  volatile float sink = 0;
  const double row_ns = NsPerCall([&] {
    serve::SellMV(sell[0], x.data(), true, scratch.data(), h0.data());
    serve::SellMV(sell[1], h0.data(), true, scratch.data(), h1.data());
    serve::SellMV(sell[2], h1.data(), true, scratch.data(), h0.data());
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
      "SELL-%d holds %llu entries with padding; weights %.0f KB as CSR, in cache):\n",
      static_cast<unsigned long long>(nnz), static_cast<unsigned long long>(cells),
      serve::kSellLanes, static_cast<unsigned long long>(sell_entries), nnz * 8 / 1e3);
  std::printf("  single row, SELL-%-2d SpMV, 3 layers:%8.0f ns = %6.2f G non-zeros/s\n",
              serve::kSellLanes, row_ns, row_nnz_s / 1e9);
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

}  // namespace

int RunSparse(const std::string& dir, int single_rows, double batch_s) {
  const auto t_setup = Clock::now();
  struct Setting {
    const char* name = nullptr;
    double mlp = 0, pairs = 0, emb = 0;
    uint64_t dense_bytes = 0, sparse_bytes = 0, onnx_bytes = 0, mlp_nnz = 0, pairs_kept = 0;
    uint64_t emb_nnz = 0, emb_entries = 0, rows_dropped = 0;
    Figures dense, sparse, ort;
    bool has_ort = false;
    double max_diff_batch = 0, max_diff_row = 0, max_diff_ort = 0;
    std::string describe;
  };
  auto make = [](const char* name, double mlp, double pairs, double emb) {
    Setting s;
    s.name = name;
    s.mlp = mlp;
    s.pairs = pairs;
    s.emb = emb;
    return s;
  };
  std::vector<Setting> settings = {make("paper (MLP 90%, R 90%, emb 40%)", 0.90, 0.90, 0.40),
                                   make("MLP 95%, R 90%, emb 40%", 0.95, 0.90, 0.40),
                                   make("MLP 98%, R 90%, emb 40%", 0.98, 0.90, 0.40),
                                   make("MLP 99%, R 90%, emb 40%", 0.99, 0.90, 0.40)};
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
  RowSplit(dir + "/sparse_sparse_" + std::to_string(settings.size() - 1), q, single_rows,
           last.sparse.p50_us);
  KernelLimits(model99.get());
  KernelTable();
  return 0;
}

}  // namespace ctrps::worker::inference_bench
