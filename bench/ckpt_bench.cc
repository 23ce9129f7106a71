// Checkpoint cost on a big table, through the real trainer: DeepFM (39
// Criteo-shaped fields, embedding 16, MLP 400^3, batch 2048, sparse Adagrad)
// whose embedding tables hold R million rows (default 10M, ~1.5 GB with
// optimizer state) in the memory store, training on Zipf batches.
//
// Prints: the training pause of a full and of an incremental checkpoint,
// checkpoint MB/s against a raw fwrite+fsync of the same bytes in the same
// run, the pause as a share of training time at one checkpoint per 5
// minutes, restore (resume) MB/s against a raw read of the same files, and
// verify MB/s.
//
//   ckpt_bench [million_rows=10] [dir=/tmp/ctrps_ckpt_bench] [memory|tiered]
// tiered: a DRAM tier of a quarter of the rows over RocksDB in dir/store.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "bench/zipf_batches.h"
#include "common/logging.h"
#include "ps/client.h"
#include "ps/sparse_optimizer.h"
#include "storage/embedding_store.h"
#include "storage/store_factory.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/checkpoint.h"
#include "worker/train/trainer.h"

using namespace ctrps;
using namespace ctrps::worker;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFields = bench::kZipfFields, kBatch = 2048, kDim = 16;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "ckpt_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// The store of a job: "memory", or "tiered" (a DRAM tier of 1/4 of the
// table's bytes over RocksDB in store_dir).
std::unique_ptr<storage::EmbeddingStore> MakeStore(const std::string& kind,
                                                   const std::string& store_dir,
                                                   int64_t total_rows) {
  if (kind == "memory") return storage::NewMemoryStore();
  storage::StoreOptions o;
  o.kind = storage::StoreOptions::Kind::kTiered;
  o.rocksdb.dir = store_dir;
  o.rocksdb.virtual_shards = 64;
  o.dram_budget_bytes = static_cast<size_t>(total_rows) * 160 / 4;
  auto s = storage::OpenStore(o);
  Check(s.status(), "open tiered store");
  return std::move(s).value();
}

struct Job {
  std::unique_ptr<Model> model;
  std::unique_ptr<DenseOptimizer> opt;
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;
  std::unique_ptr<Trainer> trainer;

  explicit Job(CheckpointOptions co, std::unique_ptr<storage::EmbeddingStore> s =
                                         storage::NewMemoryStore())
      : store(std::move(s)), client(ps::NewLocalClient(store.get(), 64)) {
    ModelOptions mo;
    mo.type = ModelType::kDeepFM;
    mo.num_fields = kFields;
    mo.emb_dims.assign(kFields, kDim);
    mo.mlp_dims = {400, 400, 400};
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    TrainerOptions to;
    to.log_interval_s = 1e9;
    to.sparse_optimizer.type = ps::SparseOptimizerType::kAdagrad;
    to.checkpoint = std::move(co);
    trainer = std::make_unique<Trainer>(to, model.get(), opt.get(), client.get(), nullptr);
    Check(trainer->DeclareTables(), "declare");
  }
};

// Fills the tables with `total` rows spread like the Zipf vocabularies
// (the hot values the batches use are among them).
void Prefill(Job* job, int64_t total) {
  double vocab_sum = 0;
  for (int f = 0; f < kFields; ++f) vocab_sum += bench::ZipfVocab(f);
  int64_t placed = 0;
  std::vector<Key> keys;
  std::vector<float> rows;
  std::vector<storage::RowStats> stats;
  for (int f = 0; f < kFields; ++f) {
    storage::TableSpec spec;
    for (const auto& t : job->store->Tables())
      if (t.table_id == f) spec = t;
    int64_t n = f + 1 == kFields ? total - placed
                                 : static_cast<int64_t>(total * (bench::ZipfVocab(f) / vocab_sum));
    n = std::max<int64_t>(n, 1);
    placed += n;
    const int rf = spec.row_floats();
    for (int64_t v0 = 0; v0 < n; v0 += 65536) {
      const int64_t m = std::min<int64_t>(65536, n - v0);
      keys.resize(m);
      rows.resize(m * rf);
      stats.assign(m, storage::RowStats{1, 1});
      for (int64_t i = 0; i < m; ++i) {
        keys[i] = MakeKey(f, Mix64((v0 + i) * 977 + f));
        storage::InitRow(spec.init, keys[i], spec.dim, spec.slot_floats, &rows[i * rf]);
      }
      Check(job->store->Put(f, keys.data(), m, rows.data(), stats.data()), "prefill");
    }
  }
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t b = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) b += e.file_size();
  return b;
}

// Raw sequential write of `bytes` in 1 MiB blocks, fsynced: MB/s.
double RawWriteMBps(const std::string& path, uint64_t bytes) {
  std::vector<char> block(1 << 20, 'x');
  auto t = Clock::now();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  for (uint64_t done = 0; done < bytes; done += block.size())
    std::fwrite(block.data(), 1, std::min<uint64_t>(block.size(), bytes - done), f);
  std::fflush(f);
  ::fsync(fileno(f));
  std::fclose(f);
  const double s = Since(t);
  fs::remove(path);
  return bytes / 1e6 / s;
}

// Raw read of every file under dir: MB/s.
double RawReadMBps(const std::string& dir) {
  std::vector<char> block(1 << 20);
  uint64_t bytes = 0;
  auto t = Clock::now();
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::FILE* f = std::fopen(e.path().c_str(), "rb");
    size_t got;
    while ((got = std::fread(block.data(), 1, block.size(), f)) > 0) bytes += got;
    std::fclose(f);
  }
  return bytes / 1e6 / Since(t);
}

}  // namespace

int main(int argc, char** argv) {
  ctrps::InitLogging("info");  // log lines to stderr, the tables to stdout
  const double million = argc > 1 ? std::atof(argv[1]) : 10.0;
  const std::string root = argc > 2 ? argv[2] : "/tmp/ctrps_ckpt_bench";
  const std::string kind = argc > 3 ? argv[3] : "memory";
  const int64_t total = static_cast<int64_t>(million * 1e6);
  if (total < 1000 || (kind != "memory" && kind != "tiered")) {
    std::fprintf(stderr, "usage: ckpt_bench [million_rows=10 (>= 0.001)] [dir] [memory|tiered]\n");
    return 2;
  }
  fs::remove_all(root);
  const std::vector<Batch> batches = bench::MakeZipfBatches(8, kBatch, 3);
  constexpr int kEvery = 8;

  // Checkpoints at steps 8 (full) and 16 (incremental: rows updated since 8).
  CheckpointOptions co;
  co.dir = root + "/ckpts";
  co.every_steps = kEvery;
  co.full_every = 2;
  co.keep_last = 2;
  co.at_end = false;
  co.config_text = "name: \"ckpt_bench\"\n";
  Job job(co, MakeStore(kind, root + "/store", total));
  auto t = Clock::now();
  Prefill(&job, total);
  const double prefill_s = Since(t);
  // Warm-up, then the timed run of 2 * kEvery steps with two checkpoints.
  {
    Job warm(CheckpointOptions{});
    bench::LoopStream w(&batches, 3);
    Check(warm.trainer->Train(&w, nullptr).status(), "warm-up");
  }
  bench::LoopStream s(&batches, 2 * kEvery);
  auto r = job.trainer->Train(&s, nullptr);
  Check(r.status(), "train");
  const auto& pauses = job.trainer->checkpoint_pauses();
  if (pauses.size() != 2 || job.trainer->checkpoints_written() != 2) {
    std::fprintf(stderr, "ckpt_bench: expected 2 checkpoints, got %zu\n", pauses.size());
    return 1;
  }
  const double step_s = (r->train_seconds - job.trainer->checkpoint_seconds()) / r->steps;
  const std::string full = co.dir + "/" + CheckpointName(kEvery);
  const std::string inc = co.dir + "/" + CheckpointName(2 * kEvery);
  auto mf = ReadCheckpointManifest(full);
  auto mi = ReadCheckpointManifest(inc);
  Check(mf.status(), "manifest");
  Check(mi.status(), "manifest");
  uint64_t full_rows = 0, inc_rows = 0;
  for (const auto& f : mf->files()) full_rows += f.rows();
  for (const auto& f : mi->files()) inc_rows += f.rows();
  const uint64_t full_bytes = DirBytes(full), inc_bytes = DirBytes(inc);
  const double raw_write = RawWriteMBps(root + "/raw.bin", full_bytes);

  // Verify, then restore (resume) into a fresh job; raw read of the same files.
  t = Clock::now();
  Check(VerifyCheckpoint(inc), "verify");
  const double verify_s = Since(t);
  const double raw_read = RawReadMBps(full);
  double restore_s;
  {
    Job fresh(co, MakeStore(kind, root + "/store2", total));
    t = Clock::now();
    std::string from;
    Check(fresh.trainer->Resume(inc, true, &from), "resume");
    restore_s = Since(t);
    if (fresh.store->Stats(15)->rows != job.store->Stats(15)->rows) {
      std::fprintf(stderr, "ckpt_bench: restored table 15 has %llu rows, expected %llu\n",
                   static_cast<unsigned long long>(fresh.store->Stats(15)->rows),
                   static_cast<unsigned long long>(job.store->Stats(15)->rows));
      return 1;
    }
  }
  const double period = 300.0;  // one checkpoint per 5 minutes
  std::printf("ckpt_bench: DeepFM, %lld embedding rows (dim 17 + Adagrad 17 floats) in a %s "
              "store, batch %d, prefill %.1fs, %.3f s/step\n",
              static_cast<long long>(total), kind.c_str(), kBatch, prefill_s, step_s);
  std::printf("  %-26s %12s %10s %8s %10s %14s\n", "", "rows", "MB", "pause s", "MB/s",
              "share @1/5min");
  std::printf("  %-26s %12llu %10.1f %8.2f %10.0f %13.2f%%\n", "full checkpoint",
              static_cast<unsigned long long>(full_rows), full_bytes / 1e6, pauses[0],
              full_bytes / 1e6 / pauses[0], 100.0 * pauses[0] / period);
  std::printf("  %-26s %12llu %10.1f %8.2f %10.0f %13.2f%%\n", "incremental checkpoint",
              static_cast<unsigned long long>(inc_rows), inc_bytes / 1e6, pauses[1],
              inc_bytes / 1e6 / pauses[1], 100.0 * pauses[1] / period);
  std::printf("  raw fwrite+fsync of the full checkpoint's bytes: %.0f MB/s -> checkpoint/raw %.2f\n",
              raw_write, full_bytes / 1e6 / pauses[0] / raw_write);
  std::printf("  verify (chain: full + increment, every file re-read): %.2fs, %.0f MB/s\n",
              verify_s, (full_bytes + inc_bytes) / 1e6 / verify_s);
  std::printf("  restore (verify + load full + increment into a fresh store): %.2fs, %.0f MB/s; "
              "raw read %.0f MB/s -> restore/raw %.2f\n",
              restore_s, (full_bytes + inc_bytes) / 1e6 / restore_s, raw_read,
              (full_bytes + inc_bytes) / 1e6 / restore_s / raw_read);
  fs::remove_all(root);
  return 0;
}
