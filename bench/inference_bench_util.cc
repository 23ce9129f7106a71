// Shared parts of inference_bench (inference_bench.h).
#include "bench/inference_bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/hash.h"
#include "worker/serve/onnx_export.h"
#include "worker/train/trainer.h"

namespace ctrps::worker::inference_bench {

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

Source::Source(ModelOptions mo, bool tiny_lr, float row_sd) {
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

}  // namespace ctrps::worker::inference_bench
