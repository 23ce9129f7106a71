// Parameter-server benchmark, run as `mpirun -np 2 ps_bench [steps=30]`
// (bench/ps_bench.sh does it). In one run, on the same two ranks:
//
//   1. single-process training, one thread (rank 0; rank 1 idles): the
//      baseline, as train_bench measures it;
//   2. pull/push of one server (rank 0) to one worker (rank 1) through the
//      ps client and server, against raw MPI point-to-point messages of the
//      same sizes and pattern (request, reply): keys/s and payload GB/s;
//   3. end-to-end training with 1 server + 1 worker (BSP, then ASP);
//   4. end-to-end training colocated on 2 ranks (BSP).
//
// Training is DeepFM of the Criteo shape (39 fields, embedding 16, MLP
// 400-400-400, batch 2048) on Zipf-keyed batches held in memory, so the
// figures compare parameter-server costs, not parsing. Rank 0 prints the
// tables, the per-step time breakdown and the ratios the targets are about.
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "bench/zipf_batches.h"
#include "common/hash.h"
#include "ps/client.h"
#include "ps/layout.h"
#include "ps/mpi_runtime.h"
#include "ps/remote_client.h"
#include "ps/server.h"
#include "ps/worker_group.h"
#include "storage/embedding_store.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/nn/threading.h"
#include "worker/train/trainer.h"

using namespace ctrps;
using namespace ctrps::worker;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFields = bench::kZipfFields, kBatch = 2048, kDim = 16;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

template <typename T>
T Must(StatusOr<T> v, const char* what) {
  if (!v.ok()) ps::MpiRuntime::Abort(std::string("ps_bench: ") + what + ": " + v.status().ToString(), 1);
  return std::move(v).value();
}
void Must(const Status& s, const char* what) {
  if (!s.ok()) ps::MpiRuntime::Abort(std::string("ps_bench: ") + what + ": " + s.ToString(), 1);
}

// Waits for the other rank without spinning a core (ranks share cores).
void IdleBarrier() {
  MPI_Request r;
  MPI_Ibarrier(MPI_COMM_WORLD, &r);
  for (int done = 0; !done;) {
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Criteo-like cardinalities (as train_bench): a few tiny fields, many mid, a few huge.
using bench::LoopStream;

std::vector<Batch> MakeBatches(int n, uint64_t seed) {
  return bench::MakeZipfBatches(n, kBatch, seed);
}

// samples/s, then per-step ms: read pull compute allreduce push wait.
constexpr int kE2eFields = 7;

std::vector<double> RunTrainer(ps::EmbeddingClient* client, ps::WorkerGroup* group,
                               const std::vector<Batch>& batches, int steps, bool overlap) {
  ModelOptions mo;
  mo.type = ModelType::kDeepFM;
  mo.num_fields = kFields;
  mo.emb_dims.assign(kFields, kDim);
  mo.mlp_dims = {400, 400, 400};
  auto model = Must(NewModel(mo), "model");
  auto opt = Must(NewDenseOptimizer(DenseOptimizerOptions{}, model->dense_size()), "optimizer");
  TrainerOptions to;
  to.log_interval_s = 1e9;
  to.overlap_pull = overlap;
  Trainer trainer(to, model.get(), opt.get(), client, nullptr);
  trainer.SetWorkerGroup(group);
  Must(trainer.DeclareTables(), "declare");
  LoopStream warm(&batches, 5);  // creates the rows of every batch
  Must(trainer.Train(&warm, nullptr).status(), "warm-up");
  LoopStream s(&batches, steps);
  TrainResult r = Must(trainer.Train(&s, nullptr), "train");
  const double ms = 1e3 / r.steps;
  return {r.samples_per_second, r.read_s * ms,      r.pull_s * ms, r.compute_s * ms,
          r.allreduce_s * ms,   r.push_s * ms,      r.wait_s * ms};
}

ps::ClusterLayout Layout(bool colocated) {
  return Must(ps::ClusterLayout::Make(2, colocated ? 0 : 1, colocated, 16), "layout");
}

// Server threads as `ctrps train` gives a dedicated server (cluster.server_threads 0).
int AutoServerThreads() { return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)); }

std::unique_ptr<ps::ParameterServer> NewServer(const ps::ClusterLayout& l, ps::Consistency c,
                                               ps::Transport* t, int threads = 1) {
  ps::ServerOptions o;
  o.layout = l;
  o.consistency = c;
  o.threads = threads;
  return Must(ps::NewParameterServer(o, t), "server");
}

std::unique_ptr<ps::EmbeddingClient> NewClient(const ps::ClusterLayout& l, ps::Consistency c,
                                               ps::Transport* t) {
  ps::RemoteClientOptions o;
  o.layout = l;
  o.consistency = c;
  return ps::NewRemoteClient(o, t);
}

// 1 server + 1 worker training; the worker's figures (on rank 1).
std::vector<double> DedicatedTrain(ps::Transport* t, const std::vector<Batch>& batches, int steps,
                                   ps::Consistency mode) {
  const ps::ClusterLayout l = Layout(false);
  if (t->rank() == 0) {
    Must(NewServer(l, mode, t, AutoServerThreads())->Run(), "server run");
    return {};
  }
  auto client = NewClient(l, mode, t);
  auto r = RunTrainer(client.get(), nullptr, batches, steps, mode != ps::Consistency::kBSP);
  Must(client->Shutdown(), "shutdown");
  return r;
}

// Colocated on both ranks; worker 0's figures, samples/s of both workers.
std::vector<double> ColocatedTrain(ps::Transport* t, int steps) {
  const ps::ClusterLayout l = Layout(true);
  auto server = NewServer(l, ps::Consistency::kBSP, t);
  std::thread st([&] { Must(server->Run(), "server run"); });
  auto batches = MakeBatches(16, 1 + t->rank());
  auto client = NewClient(l, ps::Consistency::kBSP, t);
  ps::WorkerGroup group(t, l.worker_ranks, 120000);
  auto r = RunTrainer(client.get(), &group, batches, steps, false);
  Must(client->Shutdown(), "shutdown");
  st.join();
  r[0] *= l.num_workers();
  return r;
}

struct MicroRow {
  double bytes = 0, keys = 0;
  double store_pull_s = 0, store_push_s = 0;  // msg-only GB/s: without the store's time
  double raw_pull_gbs = 0, ps_pull_gbs = 0, pull_keys_s = 0;
  double raw_push_gbs = 0, ps_push_gbs = 0, push_keys_s = 0;
  // The best ratio one single-threaded server could reach with this store
  // on this core: a protocol and transport that cost nothing beyond the raw
  // round trip, plus the store's own work (the local calls), done serially:
  // raw time / (raw time + store time).
  double ceil_pull = 0, ceil_push = 0;
  double local_pull_ms = 0, local_push_ms = 0;  // the same calls on a local memory store
};

// Raw MPI request/reply of (req, rep) bytes, `reps` times: seconds per round trip.
double RawRoundTrip(int rank, size_t req, size_t rep, int reps) {
  std::vector<char> a(req, 1), b(rep, 2);
  const int tag = 77;
  IdleBarrier();
  auto t = Clock::now();
  for (int i = 0; i < reps; ++i) {
    if (rank == 1) {
      MPI_Send(a.data(), static_cast<int>(req), MPI_BYTE, 0, tag, MPI_COMM_WORLD);
      MPI_Recv(b.data(), static_cast<int>(rep), MPI_BYTE, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(a.data(), static_cast<int>(req), MPI_BYTE, 1, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(b.data(), static_cast<int>(rep), MPI_BYTE, 1, tag, MPI_COMM_WORLD);
    }
  }
  return Since(t) / reps;
}

// Pull (keys -> rows) and push (keys + gradients -> ack) of one table of
// width kDim through the ps, and raw MPI with the same message sizes and
// pattern, measured back to back per size (the machine is shared, so each
// figure is the best of kTrials). `sizes`: bytes of the large message (pull
// reply, push request). Rank 1's rows hold the figures.
constexpr int kTrials = 3;

int Reps(size_t bytes) { return std::max(10, static_cast<int>((96 << 20) / bytes)); }

// Seconds per pull and per push of n keys through `client` (rows exist).
std::pair<double, double> TimePullPush(ps::EmbeddingClient* client, const std::vector<Key>& keys,
                                       std::vector<float>* data, size_t n, int reps) {
  auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) Must(client->Pull({{1, keys.data(), n, data->data()}}, true), "pull");
  const double pull = Since(t0) / reps;
  std::fill(data->begin(), data->end(), 0.001f);
  t0 = Clock::now();
  for (int i = 0; i < reps; ++i) Must(client->Push({{1, keys.data(), n, data->data()}}, i + 1), "push");
  // A push is acknowledged on arrival and applied before the server's next
  // request: a one-key pull waits for the last one, so every apply is timed.
  std::vector<float> one(kDim);
  Must(client->Pull({{1, keys.data(), 1, one.data()}}, false), "sync pull");
  return {pull, Since(t0) / reps};
}

// n distinct keys of table 1; by_shard: ordered by virtual shard, as the
// trainer sends them (SparseBatchBuilder::SetShardOrder), else in hash order.
std::vector<Key> BenchKeys(size_t n, uint32_t num_virtual_shards, bool by_shard) {
  std::vector<Key> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = MakeKey(1, Mix64(i + 1));
  if (by_shard)
    std::stable_sort(keys.begin(), keys.end(), [&](Key a, Key b) {
      return VirtualShardOf(a, num_virtual_shards) < VirtualShardOf(b, num_virtual_shards);
    });
  return keys;
}

std::vector<MicroRow> Micro(ps::Transport* t, const std::vector<size_t>& sizes, bool by_shard = true,
                            int server_threads = 1) {
  std::vector<MicroRow> rows;
  const double row_bytes = kDim * sizeof(float);
  const ps::ClusterLayout l = Layout(false);
  ps::TableConfig tc;
  tc.table_id = 1;
  tc.dim = kDim;
  for (size_t size : sizes) {
    MicroRow m;
    m.bytes = size;
    m.keys = std::floor(size / row_bytes);
    const size_t n = static_cast<size_t>(m.keys);
    const double payload = n * (8 + row_bytes);
    const int reps = Reps(size);
    const std::vector<Key> keys =
        BenchKeys(n, static_cast<uint32_t>(l.num_virtual_shards), by_shard);
    std::vector<float> data(n * kDim, 0.001f);
    double best[6] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9};  // raw pull/push, ps pull/push, local pull/push
    for (int trial = 0; trial < kTrials; ++trial) {
      best[0] = std::min(best[0], RawRoundTrip(t->rank(), n * 8, n * kDim * 4, reps));
      best[1] = std::min(best[1], RawRoundTrip(t->rank(), n * (8 + kDim * 4), 32, reps));
      IdleBarrier();
      if (t->rank() == 0) {
        Must(NewServer(l, ps::Consistency::kBSP, t, server_threads)->Run(), "server run");
      } else {
        auto client = NewClient(l, ps::Consistency::kBSP, t);
        Must(client->DeclareTables({tc}), "declare");
        Must(client->Pull({{1, keys.data(), n, data.data()}}, true), "warm pull");  // creates rows
        auto [pull, push] = TimePullPush(client.get(), keys, &data, n, reps);
        best[2] = std::min(best[2], pull);
        best[3] = std::min(best[3], push);
        Must(client->Shutdown(), "shutdown");
        // The store's share: the same calls on a local memory store.
        auto store = storage::NewMemoryStore();
        auto local = ps::NewLocalClient(store.get());
        Must(local->DeclareTables({tc}), "declare");
        Must(local->Pull({{1, keys.data(), n, data.data()}}, true), "warm pull");
        auto [lpull, lpush] = TimePullPush(local.get(), keys, &data, n, reps);
        best[4] = std::min(best[4], lpull);
        best[5] = std::min(best[5], lpush);
      }
      IdleBarrier();
    }
    m.raw_pull_gbs = payload / best[0] / 1e9;
    m.raw_push_gbs = (payload + 32) / best[1] / 1e9;
    m.ps_pull_gbs = payload / best[2] / 1e9;
    m.pull_keys_s = n / best[2];
    m.ps_push_gbs = payload / best[3] / 1e9;
    m.push_keys_s = n / best[3];
    // Messaging only: the round trip less the store's own time.
    m.store_pull_s = payload / std::max(best[2] - best[4], 1e-9) / 1e9;
    m.store_push_s = payload / std::max(best[3] - best[5], 1e-9) / 1e9;
    m.ceil_pull = best[0] / (best[0] + best[4]);
    m.ceil_push = best[1] / (best[1] + best[5]);
    m.local_pull_ms = best[4] * 1e3;
    m.local_push_ms = best[5] * 1e3;
    rows.push_back(m);
  }
  return rows;
}

void PrintE2e(const char* name, const std::vector<double>& r, double base) {
  std::printf("%-28s %10.0f %7.2f %7.1f %7.1f %8.1f %9.1f %7.1f %7.1f\n", name, r[0],
              base > 0 ? r[0] / base : 1.0, r[1], r[2], r[3], r[4], r[5], r[6]);
}

}  // namespace

int main(int argc, char** argv) {
  auto runtime = Must(ps::MpiRuntime::Init(&argc, &argv), "MPI init");
  int steps = 30;
  if (argc > 1) steps = std::atoi(argv[1]);
  if (runtime->size() != 2 || steps < 1) {
    if (runtime->rank() == 0)
      std::fprintf(stderr, "usage: mpirun -np 2 ps_bench [steps=30]  (exactly 2 ranks, steps >= 1)\n");
    return 2;
  }
  if (!runtime->thread_multiple())
    ps::MpiRuntime::Abort("ps_bench: the colocated run needs MPI_THREAD_MULTIPLE", 2);
  SetNumThreads(1);
  spdlog::set_level(spdlog::level::warn);
  ps::Transport* t = runtime->transport();
  const int rank = t->rank();
  auto batches = MakeBatches(16, 1);

  const std::vector<size_t> sizes = {256 << 10, 1 << 20, 4 << 20, 16 << 20};
  if (argc > 2 && std::string(argv[2]) == "micro") {  // for profiling the protocol alone
    // `micro [KiB [unsorted]]`: one message size, or all of them; keys in
    // shard order as the trainer sends them, or unsorted (the server regroups).
    std::vector<size_t> micro_sizes = sizes;
    if (argc > 3 && std::atol(argv[3]) > 0) micro_sizes = {static_cast<size_t>(std::atol(argv[3])) << 10};
    const bool by_shard = !(argc > 4 && std::string(argv[4]) == "unsorted");
    if (rank == 1) std::printf("keys %s\n", by_shard ? "in shard order (as the trainer sends them)" : "unsorted");
    // One server thread, then as many as ctrps gives a dedicated server.
    std::vector<int> thread_counts = {1};
    if (AutoServerThreads() > 1) thread_counts.push_back(AutoServerThreads());
    for (int threads : thread_counts)
      for (const MicroRow& m : Micro(t, micro_sizes, by_shard, threads))
        if (rank == 1)
          std::printf("%6.0f KiB, %d server thread%s: raw pull %5.2f ps pull %5.2f (%.2f, 1-thread ceiling "
                      "%.2f, %.3g keys/s, msg-only %5.2f); raw push %5.2f ps push %5.2f (%.2f, 1-thread "
                      "ceiling %.2f, %.3g keys/s, msg-only %5.2f) GB/s; local store pull %.2f push %.2f ms\n",
                      m.bytes / 1024, threads, threads == 1 ? "" : "s", m.raw_pull_gbs, m.ps_pull_gbs,
                      m.ps_pull_gbs / m.raw_pull_gbs, m.ceil_pull, m.pull_keys_s, m.store_pull_s,
                      m.raw_push_gbs, m.ps_push_gbs, m.ps_push_gbs / m.raw_push_gbs, m.ceil_push,
                      m.push_keys_s, m.store_push_s, m.local_pull_ms, m.local_push_ms);
    return 0;
  }
  // 1. Single process, one thread, on rank 0.
  std::vector<double> single(kE2eFields, 0);
  IdleBarrier();
  if (rank == 0) {
    auto store = storage::NewMemoryStore();
    auto client = ps::NewLocalClient(store.get());
    single = RunTrainer(client.get(), nullptr, batches, steps, false);
  }
  IdleBarrier();
  // 2. Pull/push against raw MPI.
  std::vector<MicroRow> micro = Micro(t, sizes, true, AutoServerThreads());
  IdleBarrier();
  // 3. 1 server + 1 worker.
  std::vector<double> bsp = DedicatedTrain(t, batches, steps, ps::Consistency::kBSP);
  IdleBarrier();
  std::vector<double> asp = DedicatedTrain(t, batches, steps, ps::Consistency::kASP);
  IdleBarrier();
  // 4. Colocated.
  std::vector<double> coloc = ColocatedTrain(t, steps);
  IdleBarrier();

  // Rank 1's figures go to rank 0, which prints.
  constexpr size_t kMicroFields = 8;  // per message size, in the order below
  std::vector<double> from1;
  for (const MicroRow& m : micro)
    from1.insert(from1.end(), {m.ps_pull_gbs, m.pull_keys_s, m.ps_push_gbs, m.push_keys_s,
                               m.store_pull_s, m.store_push_s, m.ceil_pull, m.ceil_push});
  from1.insert(from1.end(), bsp.begin(), bsp.end());
  from1.insert(from1.end(), asp.begin(), asp.end());
  const int n1 = static_cast<int>(micro.size() * kMicroFields + 2 * kE2eFields);
  if (rank == 1) {
    MPI_Send(from1.data(), n1, MPI_DOUBLE, 0, 78, MPI_COMM_WORLD);
    return 0;
  }
  from1.resize(n1);
  MPI_Recv(from1.data(), n1, MPI_DOUBLE, 1, 78, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  for (size_t i = 0; i < micro.size(); ++i) {
    const double* f = from1.data() + kMicroFields * i;
    micro[i].ps_pull_gbs = f[0];
    micro[i].pull_keys_s = f[1];
    micro[i].ps_push_gbs = f[2];
    micro[i].push_keys_s = f[3];
    micro[i].store_pull_s = f[4];
    micro[i].store_push_s = f[5];
    micro[i].ceil_pull = f[6];
    micro[i].ceil_push = f[7];
  }
  const size_t off = micro.size() * kMicroFields;
  bsp.assign(from1.begin() + off, from1.begin() + off + kE2eFields);
  asp.assign(from1.begin() + off + kE2eFields, from1.begin() + off + 2 * kE2eFields);

  std::printf("ps_bench: DeepFM, 39 fields, emb %d, MLP 400-400-400, batch %d, %d steps, Zipf keys, "
              "1 compute thread per worker, %d threads per dedicated server, 2 ranks\n\n", kDim, kBatch, steps,
              AutoServerThreads());
  std::printf("%-28s %10s %7s %7s %7s %7s %8s %9s %7s %7s\n", "end-to-end", "samples/s", "ratio",
              "read", "pull", "compute", "allred", "push", "wait", "(ms/step)");
  PrintE2e("single process, 1 thread", single, 0);
  PrintE2e("1 server + 1 worker, BSP", bsp, single[0]);
  PrintE2e("1 server + 1 worker, ASP", asp, single[0]);
  PrintE2e("colocated 2 (both), BSP", coloc, single[0]);
  std::printf("\n%-10s %7s | %8s %8s %5s %7s %8s %9s %5s | %8s %8s %5s %7s %8s %9s %5s\n", "message",
              "keys", "raw pull", "ps pull", "ratio", "ceiling", "keys/s", "msg-only", "ratio",
              "raw push", "ps push", "ratio", "ceiling", "keys/s", "msg-only", "ratio");
  for (const MicroRow& m : micro)
    std::printf("%6.0f KiB %7.0f | %8.2f %8.2f %5.2f %7.2f %8.3g %9.2f %5.2f | %8.2f %8.2f %5.2f %7.2f %8.3g "
                "%9.2f %5.2f\n",
                m.bytes / 1024, m.keys, m.raw_pull_gbs, m.ps_pull_gbs, m.ps_pull_gbs / m.raw_pull_gbs,
                m.ceil_pull, m.pull_keys_s, m.store_pull_s, m.store_pull_s / m.raw_pull_gbs,
                m.raw_push_gbs, m.ps_push_gbs, m.ps_push_gbs / m.raw_push_gbs, m.ceil_push,
                m.push_keys_s, m.store_push_s, m.store_push_s / m.raw_push_gbs);
  std::printf(
      "\nratio (end-to-end) = samples/s / single-process samples/s (target >= 0.70 for 1 server + "
      "1 worker).\nratio (pull/push) = ps payload GB/s (keys + rows or gradients, per server) / raw "
      "MPI GB/s of the same request/reply sizes (target >= 0.50 from 256 KiB). GB/s = 1e9 bytes/s.\n"
      "ps pull/push include the server's store lookups (pull) and sparse Adam on every row (push);\n"
      "msg-only takes out the time the same calls need on a local memory store (protocol + transport).\n"
      "ceiling = raw time / (raw time + that local store time): the ratio one single-threaded server\n"
      "would reach if its protocol and transport cost no more than the raw round trip.\n");
  std::fflush(stdout);
  return 0;
}
