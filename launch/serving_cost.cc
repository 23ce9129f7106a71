#include "launch/serving_cost.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "launch/job_setup.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::launch {
namespace {

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

}  // namespace

StatusOr<ServingCost> MeasureServingCost(const LoadedConfig& c, const worker::DatasetSchema& schema,
                                         worker::Model* model, ps::EmbeddingClient* client,
                                         worker::BatchSource* data, const std::string& dir,
                                         int64_t max_rows) {
  namespace fs = std::filesystem;
  worker::serve::ExportOptions o;
  o.out_dir = dir;
  o.source = "ctrps compress --serving-cost";
  worker::serve::DataSpec spec;
  spec.parser = MakeParserOptions(c.job.data());
  spec.parser.keep_fields = model->options().field_tables;  // a model with removed fields
  spec.field_names = schema.field_names;
  RETURN_IF_ERROR_CTX(worker::serve::ExportBundle(model, client, spec, o), "exporting to " + dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  ServingCost cost;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) cost.bundle_bytes += e.file_size();
  ASSIGN_OR_RETURN(auto engine, worker::serve::InferenceEngine::Open(dir));
  // Up to max_rows rows in memory; one pass over them warms the caches up,
  // the next is timed row by row.
  RETURN_IF_ERROR(data->Rewind());
  const int F = engine->num_fields();
  std::vector<Key> keys;
  std::vector<float> values;
  worker::Batch batch;
  int64_t n = 0;
  while (n < max_rows) {
    ASSIGN_OR_RETURN(bool more, data->Next(&batch));
    if (!more) break;
    const int take = static_cast<int>(std::min<int64_t>(batch.size(), max_rows - n));
    keys.insert(keys.end(), batch.keys.begin(), batch.keys.begin() + static_cast<size_t>(take) * F);
    values.insert(values.end(), batch.values.begin(), batch.values.begin() + static_cast<size_t>(take) * F);
    n += take;
  }
  RETURN_IF_ERROR(data->Rewind());
  if (n == 0) return Status::InvalidArgument("timing single rows: the data has no valid row");
  volatile float sink = 0;  // keeps the predictions from being optimised away
  for (int64_t i = 0; i < n; ++i) sink = sink + engine->PredictRow(&keys[i * F], &values[i * F]);
  std::vector<double> us(n);
  for (int64_t i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + engine->PredictRow(&keys[i * F], &values[i * F]);
    us[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  cost.rows_timed = n;
  cost.row_p50_us = Quantile(us, 0.5);
  cost.row_p99_us = Quantile(us, 0.99);
  return cost;
}

}  // namespace ctrps::launch
