// Training throughput of DeepFM and DeepFwFM (39 fields, embedding 16, MLP
// 400-400-400, batch 2048) on Zipf-keyed Criteo-shaped batches held in
// memory, through the whole trainer (dedup, pull, forward, backward, dense
// Adam, push to the in-memory store with sparse Adam), on 1 and 2 threads.
// Beside it, an Eigen GEMM of the MLP's shapes timed in the same run: the
// ratio says how close the model's dense math gets to the machine's GEMM.
//
//   train_bench [steps=30]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <Eigen/Core>

#include "bench/zipf_batches.h"
#include "common/hash.h"
#include "common/logging.h"
#include "ps/client.h"
#include "storage/embedding_store.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/threading.h"
#include "worker/train/trainer.h"

using namespace ctrps;
using namespace ctrps::worker;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFields = bench::kZipfFields, kBatch = 2048, kDim = 16;

using bench::LoopStream;

std::vector<Batch> MakeBatches(int n, uint64_t seed) {
  return bench::MakeZipfBatches(n, kBatch, seed);
}

struct Result {
  double samples_per_s, compute_s, total_s, mlp_gflops;
};

Result RunModel(ModelType type, const std::vector<Batch>& batches, int steps) {
  ModelOptions mo;
  mo.type = type;
  mo.num_fields = kFields;
  mo.emb_dims.assign(kFields, kDim);
  mo.mlp_dims = {400, 400, 400};
  auto model = std::move(NewModel(mo)).value();
  DenseOptimizerOptions oo;
  auto opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
  auto store = storage::NewMemoryStore();
  auto client = ps::NewLocalClient(store.get());
  TrainerOptions to;
  to.log_interval_s = 1e9;
  Trainer trainer(to, model.get(), opt.get(), client.get(), nullptr);
  if (!trainer.DeclareTables().ok()) std::abort();
  LoopStream warm(&batches, 5);
  if (!trainer.Train(&warm, nullptr).ok()) std::abort();
  LoopStream s(&batches, steps);
  auto r = trainer.Train(&s, nullptr);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    std::abort();
  }
  // MLP forward MACs per example: 624*400 + 400*400*2 + 400; x2 FLOPs, x3 fwd+bwd.
  const double in = kFields * kDim;
  const double mlp_flops = 2.0 * (in * 400 + 400 * 400 * 2 + 400) * 3.0;
  Result res;
  res.samples_per_s = r->samples_per_second;
  res.compute_s = r->compute_s;
  res.total_s = r->train_seconds;
  res.mlp_gflops = mlp_flops * r->samples / r->compute_s / 1e9;
  return res;
}

// The MLP's forward and backward GEMMs at batch 2048, as plain Eigen products.
double GemmGflops(int reps) {
  using M = Eigen::MatrixXf;
  const int dims[] = {kFields * kDim, 400, 400, 400};
  std::vector<M> W, X, Y, dW, dX;
  for (int l = 0; l < 3; ++l) {
    W.push_back(M::Random(dims[l + 1], dims[l]));
    X.push_back(M::Random(dims[l], kBatch));
    Y.push_back(M::Zero(dims[l + 1], kBatch));
    dW.push_back(M::Zero(dims[l + 1], dims[l]));
    dX.push_back(M::Zero(dims[l], kBatch));
  }
  double flops = 0;
  auto t = Clock::now();
  for (int r = 0; r < reps; ++r) {
    for (int l = 0; l < 3; ++l) {
      Y[l].noalias() = W[l] * X[l];
      dW[l].noalias() = Y[l] * X[l].transpose();
      dX[l].noalias() = W[l].transpose() * Y[l];
      flops += 3.0 * 2.0 * dims[l] * dims[l + 1] * kBatch;
    }
  }
  double s = std::chrono::duration<double>(Clock::now() - t).count();
  return flops / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  ctrps::InitLogging("info");  // log lines to stderr, the tables to stdout
  int steps = 30;
  if (argc > 1) {
    steps = std::atoi(argv[1]);
    if (steps < 1) {
      std::fprintf(stderr, "usage: train_bench [steps=30]  (steps >= 1)\n");
      return 2;
    }
  }
  auto batches = MakeBatches(16, 1);
  std::printf("train_bench: 39 fields, emb 16, MLP 400-400-400, batch 2048, %d steps, Zipf keys\n\n",
              steps);
  std::printf("%-9s %7s %12s %12s %14s %14s %8s\n", "model", "threads", "samples/s", "compute %",
              "MLP GFLOP/s", "GEMM GFLOP/s", "ratio");
  for (int threads : {1, 2}) {
    SetNumThreads(threads);
    double gemm = GemmGflops(4);
    for (ModelType type : {ModelType::kDeepFM, ModelType::kDeepFwFM}) {
      Result r = RunModel(type, batches, steps);
      std::printf("%-9s %7d %12.0f %11.0f%% %14.1f %14.1f %8.2f\n", ModelTypeName(type), threads,
                  r.samples_per_s, 100 * r.compute_s / r.total_s, r.mlp_gflops, gemm,
                  r.mlp_gflops / gemm);
    }
  }
  std::printf("\nratio = the model's MLP GFLOP/s during compute / Eigen GEMM GFLOP/s of the same shapes.\n");
  return 0;
}
