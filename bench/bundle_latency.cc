// bundle_latency: the serving speed of exported bundles on real data lines,
// measured in one run with interleaved rounds so the bundles share the
// machine's state: single-row p50/p99 (one PredictRow per example, one
// thread) and batch-1024 rows/s, with each bundle's ratio against the first.
//   bundle_latency DATA_FILE ROWS BUNDLE [BUNDLE ...]
// Prints one line per bundle: name, bytes, p50_us, p99_us, batch_rows_s, and
// the ratios to the first bundle (the uncompressed model, by convention).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "worker/data/data_reader.h"
#include "worker/nn/threading.h"
#include "worker/serve/engine.h"

using namespace ctrps;

namespace {

struct Result {
  std::string dir;
  uint64_t bytes = 0;
  std::vector<double> row_us;
  double batch_rows = 0, batch_s = 0;
};

uint64_t DirBytes(const std::string& dir) {
  uint64_t b = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) b += e.file_size();
  return b;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bundle_latency DATA_FILE ROWS BUNDLE [BUNDLE ...]\n");
    return 2;
  }
  worker::SetNumThreads(1);
  const std::string data = argv[1];
  const int rows = std::max(1024, std::atoi(argv[2]));
  std::vector<std::unique_ptr<worker::serve::InferenceEngine>> engines;
  std::vector<Result> results;
  for (int i = 3; i < argc; ++i) {
    auto e = worker::serve::InferenceEngine::Open(argv[i]);
    if (!e.ok()) {
      std::fprintf(stderr, "%s: %s\n", argv[i], e.status().ToString().c_str());
      return 1;
    }
    engines.push_back(std::move(*e));
    results.push_back({argv[i], DirBytes(argv[i]), {}, 0, 0});
  }
  // The examples, once per bundle, in batches of 1024: each bundle's own
  // parser (a model with removed fields reads fewer fields of the same lines).
  std::vector<std::vector<worker::Batch>> per_engine;
  for (auto& e : engines) {
    worker::DataReaderOptions o;
    o.input = data;
    o.parser = e->data().parser;
    o.batching.batch_size_rows = 1024;
    o.batching.num_epochs = 1;
    o.batching.shuffle_buffer_rows = 0;
    auto reader = worker::DataReader::Open(o);
    if (!reader.ok()) {
      std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
      return 1;
    }
    std::vector<worker::Batch> batches;
    int have = 0;
    while (have < rows) {
      worker::Batch b;
      auto more = (*reader)->Next(&b);
      if (!more.ok() || !*more) break;
      have += b.size();
      batches.push_back(std::move(b));
    }
    if (batches.empty() || batches[0].size() < 1024) {
      std::fprintf(stderr, "%s: fewer than 1024 rows\n", data.c_str());
      return 1;
    }
    per_engine.push_back(std::move(batches));
  }
  std::vector<float> out(1024);
  using Clock = std::chrono::steady_clock;
  // Warm-up, then rounds: each bundle scores every batch single-row and
  // batched; rounds interleave the bundles.
  for (size_t i = 0; i < engines.size(); ++i) engines[i]->PredictBatch(per_engine[i][0], out.data());
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < engines.size(); ++i) {
      Result& r = results[i];
      const int F = engines[i]->num_fields();
      for (const worker::Batch& b : per_engine[i]) {
        for (int k = 0; k < b.size(); ++k) {
          const auto t0 = Clock::now();
          volatile float p = engines[i]->PredictRow(b.keys.data() + static_cast<size_t>(k) * F,
                                                    b.values.data() + static_cast<size_t>(k) * F);
          (void)p;
          r.row_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        if (b.size() != 1024) continue;
        const auto t0 = Clock::now();
        engines[i]->PredictBatch(b, out.data());
        r.batch_s += std::chrono::duration<double>(Clock::now() - t0).count();
        r.batch_rows += b.size();
      }
    }
  const Result& base = results[0];
  const double base_p50 = Quantile(base.row_us, 0.5), base_rate = base.batch_rows / base.batch_s;
  std::printf("%-44s %12s %9s %9s %12s %9s %9s %9s\n", "bundle", "bytes", "p50_us", "p99_us",
              "batch_rows/s", "bytes_x", "p50_x", "batch_x");
  for (const Result& r : results) {
    const double p50 = Quantile(r.row_us, 0.5), p99 = Quantile(r.row_us, 0.99);
    const double rate = r.batch_rows / r.batch_s;
    std::printf("%-44s %12llu %9.2f %9.2f %12.0f %9.3f %9.3f %9.3f\n", r.dir.c_str(),
                static_cast<unsigned long long>(r.bytes), p50, p99, rate,
                static_cast<double>(r.bytes) / base.bytes, p50 / base_p50, rate / base_rate);
  }
  return 0;
}
