// Checkpoints: shard files, manifests, resume bit for bit at any step,
// incremental chains, retention, corruption fallback, a full disk, and
// refusing a checkpoint of another model.
#include "worker/train/checkpoint.h"

#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/transport.h"
#include "ps/worker_group.h"
#include "storage/admission.h"
#include "storage/embedding_store.h"
#include "storage/shard_file.h"
#include "tests/storage/temp_dir.h"
#include "tests/worker/train/test_util.h"
#include "worker/nn/dense_optimizer.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
namespace {
namespace fs = std::filesystem;
using storage::testing::FreshDir;
using testing::PlantedBatches;
using testing::VectorStream;

constexpr int kFields = 5;
constexpr uint32_t kShards = 4;

// One training job over a fixed batch list: DeepFM with dropout (so the
// RNG state matters), Adam dense, Adagrad sparse (optimizer state per row).
struct Job {
  std::unique_ptr<Model> model;
  std::unique_ptr<DenseOptimizer> opt;
  std::unique_ptr<storage::EmbeddingStore> store;
  std::unique_ptr<ps::EmbeddingClient> client;
  std::unique_ptr<Trainer> trainer;

  // With `policy`, the store applies admission/eviction (per virtual shard).
  Job(CheckpointOptions co, int64_t max_steps = 0, int emb_dim = 4, bool overlap = false,
      const storage::TablePolicy& policy = {}) {
    storage::PolicyOptions po;
    po.defaults = policy;
    po.num_virtual_shards = kShards;
    store = std::move(storage::NewPolicyStore(storage::NewMemoryStore(), po)).value();
    client = ps::NewLocalClient(store.get(), kShards);
    ModelOptions mo;
    mo.type = ModelType::kDeepFM;
    mo.num_fields = kFields;
    mo.emb_dims.assign(kFields, emb_dim);
    mo.mlp_dims = {16, 8};
    mo.dropout = 0.2f;
    model = std::move(NewModel(mo)).value();
    DenseOptimizerOptions oo;
    oo.type = DenseOptimizerOptions::Type::kAdam;
    oo.learning_rate = 0.01f;
    opt = std::move(NewDenseOptimizer(oo, model->dense_size())).value();
    TrainerOptions to;
    to.epochs = 3;
    to.max_steps = max_steps;
    to.sparse_optimizer.type = ps::SparseOptimizerType::kAdagrad;
    to.sparse_optimizer.learning_rate = 0.05f;
    to.embedding_init_scale = 0.05f;
    to.checkpoint = std::move(co);
    to.overlap_pull = overlap;
    trainer = std::make_unique<Trainer>(to, model.get(), opt.get(), client.get(), nullptr);
    EXPECT_TRUE(trainer->DeclareTables().ok());
  }

  Status Run(const std::string& resume = "", bool auto_resume = true) {
    VectorStream data(PlantedBatches(23, 32, kFields, 300, 11));
    std::string from;
    RETURN_IF_ERROR(trainer->Resume(resume, auto_resume, &from));
    return trainer->Train(&data, nullptr).status();
  }

  // Every row (with optimizer state and stats) and every dense value.
  std::map<Key, std::vector<float>> Rows() const {
    std::map<Key, std::vector<float>> out;
    for (const auto& t : store->Tables()) {
      EXPECT_TRUE(store->Scan(t.table_id, [&](Key k, const float* row, const storage::RowStats& s) {
        std::vector<float> v(row, row + t.row_floats());
        v.push_back(static_cast<float>(s.count));
        v.push_back(static_cast<float>(s.last_step));
        out[k] = v;
        return true;
      }).ok());
    }
    return out;
  }
  std::vector<float> Dense() const {
    return std::vector<float>(model->dense_values(), model->dense_values() + model->dense_size());
  }
};

CheckpointOptions Every(const std::string& dir, int64_t steps, int full_every = 1, int keep = 3) {
  CheckpointOptions co;
  co.dir = dir;
  co.every_steps = steps;
  co.full_every = full_every;
  co.keep_last = keep;
  co.config_text = "name: \"test\"\n";
  return co;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x10));
}

std::string Newest(const std::string& root) {
  auto all = ListCheckpoints(root);
  EXPECT_TRUE(all.ok());
  return all->empty() ? "" : all->back().path;
}

TEST(ShardFileTest, RoundTripFullAndIncremental) {
  const std::string dir = FreshDir("shardfile");
  auto store = storage::NewMemoryStore();
  storage::TableSpec a{0, 3, 3, {}}, b{7, 2, 0, {}};
  ASSERT_TRUE(store->CreateTable(a).ok());
  ASSERT_TRUE(store->CreateTable(b).ok());
  for (int i = 0; i < 5000; ++i) {
    const Key k = MakeKey(i % 2 ? 7 : 0, Mix64(i));
    const int table = KeyTable(k);
    ASSERT_TRUE(store->Modify(table, &k, 1, static_cast<uint32_t>(1 + i % 10),
                              [&](size_t, float* row) { row[0] = static_cast<float>(i); }).ok());
  }
  auto full = storage::WriteStoreShards(*store, dir, kShards, {0, 1, 2, 3}, 10, 0);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  uint64_t rows = 0;
  for (const auto& f : *full) rows += f.rows;
  EXPECT_EQ(rows, 5000u);
  auto copy = storage::NewMemoryStore();
  ASSERT_TRUE(copy->CreateTable(a).ok());
  ASSERT_TRUE(copy->CreateTable(b).ok());
  for (uint32_t v = 0; v < kShards; ++v)
    ASSERT_TRUE(storage::LoadShardFile(dir + "/" + storage::ShardFileName(v), v, kShards, copy.get()).ok());
  for (int t : {0, 7}) {
    std::map<Key, std::pair<float, uint32_t>> x, y;
    ASSERT_TRUE(store->Scan(t, [&](Key k, const float* r, const storage::RowStats& s) {
      x[k] = {r[0], s.last_step};
      return true;
    }).ok());
    ASSERT_TRUE(copy->Scan(t, [&](Key k, const float* r, const storage::RowStats& s) {
      y[k] = {r[0], s.last_step};
      return true;
    }).ok());
    EXPECT_EQ(x, y);
  }
  // Incremental: only rows last updated after step 7 (steps 8, 9, 10).
  const std::string inc = FreshDir("shardfile-inc");
  auto part = storage::WriteStoreShards(*store, inc, kShards, {0, 1, 2, 3}, 10, 7);
  ASSERT_TRUE(part.ok());
  rows = 0;
  for (const auto& f : *part) rows += f.rows;
  EXPECT_EQ(rows, 1500u);
}

TEST(ShardFileTest, DetectsTruncationBitFlipsAndWrongShard) {
  const std::string dir = FreshDir("shardfile-bad");
  auto store = storage::NewMemoryStore();
  storage::TableSpec a{0, 4, 0, {}};
  ASSERT_TRUE(store->CreateTable(a).ok());
  std::vector<Key> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back(Mix64(i) >> 8);
  std::vector<float> out(keys.size() * 4);
  ASSERT_TRUE(store->Lookup(0, keys.data(), keys.size(), out.data(), 4, true).ok());
  ASSERT_TRUE(storage::WriteStoreShards(*store, dir, 2, {0, 1}, 1, 0).ok());
  const std::string f0 = dir + "/" + storage::ShardFileName(0);
  ASSERT_TRUE(storage::ReadShardFile(f0, nullptr, nullptr).ok());
  // Wrong shard.
  auto wrong = storage::LoadShardFile(f0, 1, 2, store.get());
  EXPECT_NE(wrong.message().find("holds shard 0 of 2"), std::string::npos) << wrong.ToString();
  // Bit flip in the middle.
  const std::string flipped = dir + "/flipped";
  fs::copy_file(f0, flipped);
  FlipByte(flipped, fs::file_size(flipped) / 2);
  Status s = storage::ReadShardFile(flipped, nullptr, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("flipped"), std::string::npos);
  // Truncated: every cut is detected.
  const uint64_t size = fs::file_size(f0);
  for (uint64_t cut : {uint64_t{0}, uint64_t{10}, size / 3, size - 1}) {
    const std::string t = dir + "/cut";
    fs::remove(t);
    fs::copy_file(f0, t);
    fs::resize_file(t, cut);
    Status c = storage::ReadShardFile(t, nullptr, nullptr);
    EXPECT_EQ(c.code(), Status::Code::kCorruption) << cut;
    // Nothing is loaded from a damaged file.
    auto empty = storage::NewMemoryStore();
    ASSERT_TRUE(empty->CreateTable(a).ok());
    EXPECT_FALSE(storage::LoadShardFile(t, 0, 2, empty.get()).ok());
    EXPECT_EQ(empty->Stats(0)->rows, 0u);
  }
}

// Kill at any step (here: stop after k steps, drop the trainer), resume in
// a fresh process-like job: the final model equals an uninterrupted run's.
TEST(CheckpointResumeTest, ResumeAtAnyStepIsBitIdentical) {
  const std::string ref_dir = FreshDir("ckpt-ref");
  Job ref(Every(ref_dir, 5, 3));
  ASSERT_TRUE(ref.Run().ok());
  EXPECT_EQ(ref.trainer->step(), 69);  // 3 epochs of 23 batches
  const auto ref_rows = ref.Rows();
  const auto ref_dense = ref.Dense();
  for (int64_t stop_at : {3, 5, 11, 23, 24, 40, 46, 68}) {
    const std::string dir = FreshDir("ckpt-resume");
    {
      Job first(Every(dir, 5, 3), stop_at);
      ASSERT_TRUE(first.Run().ok());
    }
    // The at-end checkpoint of the stopped run is at stop_at; drop it too
    // so that the resume starts from the last periodic one (as after kill -9).
    if (stop_at % 5 != 0) fs::remove_all(dir + "/" + CheckpointName(stop_at));
    Job second(Every(dir, 5, 3));
    ASSERT_TRUE(second.Run().ok()) << stop_at;
    EXPECT_EQ(second.trainer->step(), 69);
    EXPECT_TRUE(second.Dense() == ref_dense) << "dense differs after a stop at " << stop_at;
    EXPECT_TRUE(second.Rows() == ref_rows) << "rows differ after a stop at " << stop_at;
  }
}

// Admission and eviction decide from state (sketches, call counts, the
// eviction schedule) that checkpoints carry: a resumed run admits and evicts
// exactly like an uninterrupted one.
TEST(CheckpointResumeTest, ResumeWithAdmissionAndEvictionIsBitIdentical) {
  storage::TablePolicy seen, prob;
  seen.admission.min_seen = 3;
  seen.admission.counter_bytes = 64 << 10;
  seen.eviction.max_unseen_steps = 6;
  seen.eviction.every_steps = 4;
  prob.admission.probability = 0.4;
  prob.admission.seed = 3;
  prob.eviction.min_count = 2;
  prob.eviction.every_steps = 9;
  for (const storage::TablePolicy& policy : {seen, prob}) {
    Job ref(Every(FreshDir("ckpt-adm-ref"), 5, 3), 0, 4, false, policy);
    ASSERT_TRUE(ref.Run().ok());
    auto counters = [](Job& j) {
      std::vector<uint64_t> c;
      auto tables = j.client->TableStats();
      EXPECT_TRUE(tables.ok());
      for (const auto& t : *tables)
        c.insert(c.end(), {t.rows, t.admitted, t.rejected_lookups, t.dropped_updates,
                           t.evicted_stale, t.evicted_rare});
      return c;
    };
    const auto ref_counters = counters(ref);
    uint64_t rejected = 0, evicted = 0;
    for (size_t i = 0; i < ref_counters.size(); i += 6)
      rejected += ref_counters[i + 2], evicted += ref_counters[i + 4] + ref_counters[i + 5];
    EXPECT_GT(rejected, 0u);
    EXPECT_GT(evicted, 0u);
    for (int64_t stop_at : {7, 23, 52}) {
      const std::string dir = FreshDir("ckpt-adm");
      {
        Job first(Every(dir, 5, 3), stop_at, 4, false, policy);
        ASSERT_TRUE(first.Run().ok());
      }
      if (stop_at % 5 != 0) fs::remove_all(dir + "/" + CheckpointName(stop_at));
      Job second(Every(dir, 5, 3), 0, 4, false, policy);
      ASSERT_TRUE(second.Run().ok()) << stop_at;
      EXPECT_TRUE(second.Dense() == ref.Dense()) << "dense differs after a stop at " << stop_at;
      EXPECT_TRUE(second.Rows() == ref.Rows()) << "rows differ after a stop at " << stop_at;
      EXPECT_EQ(counters(second), ref_counters) << "after a stop at " << stop_at;
    }
  }
}

// With the next batch prefetched (asynchronous modes), a checkpoint resumes
// before the prefetched batch; in one process that is still exact.
TEST(CheckpointResumeTest, ResumeWithPrefetchedBatchIsExactInOneProcess) {
  Job ref(Every(FreshDir("ckpt-ovl-ref"), 5, 2), 0, 4, /*overlap=*/true);
  ASSERT_TRUE(ref.Run().ok());
  for (int64_t stop_at : {7, 23, 50}) {
    const std::string dir = FreshDir("ckpt-ovl");
    {
      Job first(Every(dir, 5, 2), stop_at, 4, true);
      ASSERT_TRUE(first.Run().ok());
    }
    if (stop_at % 5 != 0) fs::remove_all(dir + "/" + CheckpointName(stop_at));
    Job second(Every(dir, 5, 2), 0, 4, true);
    ASSERT_TRUE(second.Run().ok());
    EXPECT_TRUE(second.Dense() == ref.Dense()) << stop_at;
    EXPECT_TRUE(second.Rows() == ref.Rows()) << stop_at;
  }
}

// Re-finding the reader position on resume can take minutes (inside a gzip
// input the reader decompresses from the file's start). A distributed
// worker keeps the ranks that wait for it meanwhile from timing out: here a
// peer whose waits time out after 300 ms waits through a 1.2 s restore
// without one timeout, and times out again once the restore is over.
TEST(CheckpointResumeTest, SlowReaderRestoreKeepsWaitingRanksFromTimingOut) {
  const std::string dir = FreshDir("ckpt-slow-restore");
  {
    Job first(Every(dir, 5, 3), 11);
    ASSERT_TRUE(first.Run().ok());
  }
  using Clock = std::chrono::steady_clock;
  constexpr int64_t kTimeoutMs = 300;
  auto net = ps::NewInProcessNetwork(2);  // rank 0: this worker; rank 1: a rank waiting for it
  ps::WorkerGroup group(net->Endpoint(0), {0}, kTimeoutMs);
  Job second(Every(dir, 5, 3));
  second.trainer->SetWorkerGroup(&group);

  std::atomic<bool> restoring{false}, finished{false};
  std::atomic<int64_t> restore_start_ns{0};
  struct SlowRestore : BatchSource {
    BatchSource* inner = nullptr;
    std::atomic<bool>* restoring = nullptr;
    std::atomic<int64_t>* start_ns = nullptr;
    StatusOr<bool> Next(Batch* b) override { return inner->Next(b); }
    Status Rewind() override { return inner->Rewind(); }
    std::string SkippedSummary() const override { return ""; }
    StatusOr<std::string> SavePosition() const override { return inner->SavePosition(); }
    Status RestorePosition(const std::string& p) override {
      start_ns->store(Clock::now().time_since_epoch().count());
      restoring->store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(4 * kTimeoutMs));
      restoring->store(false);
      return inner->RestorePosition(p);
    }
  };
  VectorStream data(PlantedBatches(23, 32, kFields, 300, 11));
  SlowRestore slow;
  slow.inner = &data;
  slow.restoring = &restoring;
  slow.start_ns = &restore_start_ns;

  // The peer waits for a request that never comes (the worker trains on a
  // local store), again after each timeout, and notes timeouts that hit
  // while the restore was under way (past its first moments).
  int timeouts_in_restore = 0, timeouts = 0;
  std::thread peer([&] {
    while (!finished) {
      auto m = net->Endpoint(1)->Recv(ps::Channel::kServer, 0, ps::kTagRequest, kTimeoutMs);
      if (m.ok()) continue;
      ++timeouts;
      const int64_t since_start = Clock::now().time_since_epoch().count() - restore_start_ns.load();
      if (restoring && since_start > std::chrono::nanoseconds(std::chrono::milliseconds(100)).count())
        ++timeouts_in_restore;
    }
  });
  std::string from;
  Status st = second.trainer->Resume("", true, &from);
  if (st.ok()) st = second.trainer->Train(&slow, nullptr).status();
  // Let the peer time out at least once after the restore.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kTimeoutMs));
  finished = true;
  peer.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(from.empty());
  EXPECT_EQ(timeouts_in_restore, 0) << "a waiting rank timed out during the restore";
  EXPECT_GE(timeouts, 1) << "the keep-alives went on after the restore";
}

TEST(CheckpointResumeTest, TimeBasedCheckpoints) {
  const std::string dir = FreshDir("ckpt-time");
  CheckpointOptions co = Every(dir, 0, 1, 100);
  co.every_seconds = 1e-9;  // due at every step
  co.at_end = false;
  Job job(co, 6);
  ASSERT_TRUE(job.Run().ok());
  EXPECT_EQ(job.trainer->checkpoints_written(), 6);
  auto all = ListCheckpoints(dir);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);
  CheckpointOptions never = Every(FreshDir("ckpt-time2"), 0, 1, 100);
  never.every_seconds = 3600;
  never.at_end = false;
  Job idle(never, 6);
  ASSERT_TRUE(idle.Run().ok());
  EXPECT_EQ(idle.trainer->checkpoints_written(), 0);
}

TEST(CheckpointResumeTest, IncrementalChainRetentionAndInspect) {
  const std::string dir = FreshDir("ckpt-chain");
  Job job(Every(dir, 4, 3, 2));
  ASSERT_TRUE(job.Run().ok());
  auto all = ListCheckpoints(dir);
  ASSERT_TRUE(all.ok());
  // keep_last 2, but the full checkpoint under the kept increments stays.
  std::vector<std::string> names;
  for (const auto& l : *all) names.push_back(l.name);
  ASSERT_GE(names.size(), 2u);
  const std::string newest = all->back().path;
  auto chain = CheckpointChain(newest);
  ASSERT_TRUE(chain.ok());
  for (const auto& d : *chain) EXPECT_TRUE(fs::exists(d)) << d;
  auto first = ReadCheckpointManifest(chain->front());
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->incremental());
  EXPECT_TRUE(VerifyCheckpoint(newest).ok());
  // Incrementals hold fewer rows than the full one.
  auto m = ReadCheckpointManifest(newest);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->tables_size(), kFields);
  EXPECT_EQ(m->model_type(), "DeepFM");
  EXPECT_EQ(m->virtual_shards(), kShards);
  uint64_t table_rows = 0, file_rows = 0;
  for (const auto& t : m->tables()) table_rows += t.rows();
  for (const auto& f : m->files()) file_rows += f.rows();
  EXPECT_EQ(table_rows, file_rows);
  EXPECT_GT(file_rows, 0u);
}

TEST(CheckpointFaultTest, CorruptNewestFallsBackToPreviousWhole) {
  const std::string dir = FreshDir("ckpt-corrupt");
  {
    Job job(Every(dir, 6, 1, 5), 30);
    ASSERT_TRUE(job.Run().ok());
  }
  const std::string newest_name = fs::path(Newest(dir)).filename().string();
  ASSERT_EQ(CheckpointStep(newest_name), 30);

  struct Case {
    const char* what;
    std::function<void(const std::string& ckpt)> damage;
  };
  auto shard = [](const std::string& ckpt) { return ckpt + "/" + storage::ShardFileName(1); };
  const std::vector<Case> cases = {
      {"bit flip", [&](const std::string& c) { FlipByte(shard(c), fs::file_size(shard(c)) / 2); }},
      {"truncation",
       [&](const std::string& c) { fs::resize_file(shard(c), fs::file_size(shard(c)) - 100); }},
      {"missing shard", [&](const std::string& c) { fs::remove(shard(c)); }},
      {"flipped dense file", [&](const std::string& c) { FlipByte(c + "/dense.bin", 5); }},
      {"garbage manifest",
       [&](const std::string& c) {
         std::ofstream(c + "/" + kCheckpointManifestName, std::ios::trunc) << "garbage";
       }},
      {"empty manifest",
       [&](const std::string& c) { fs::resize_file(c + "/" + kCheckpointManifestName, 0); }},
      {"truncated manifest",
       [&](const std::string& c) {
         const std::string m = c + "/" + kCheckpointManifestName;
         fs::resize_file(m, fs::file_size(m) - 7);
       }},
      {"missing manifest", [&](const std::string& c) { fs::remove(c + "/" + kCheckpointManifestName); }},
      {"flipped manifest byte",
       [&](const std::string& c) { FlipByte(c + "/" + kCheckpointManifestName, 3); }},
  };
  for (const Case& c : cases) {
    const std::string copy = FreshDir("ckpt-corrupt-case");
    fs::remove_all(copy);
    fs::copy(dir, copy, fs::copy_options::recursive);
    const std::string target = copy + "/" + newest_name;
    c.damage(target);
    EXPECT_FALSE(VerifyCheckpoint(target).ok()) << c.what;
    std::vector<std::string> skipped;
    auto found = FindResumableCheckpoint(copy, &skipped);
    ASSERT_TRUE(found.ok()) << c.what;
    EXPECT_EQ(CheckpointStep(fs::path(*found).filename().string()), 24) << c.what;
    ASSERT_EQ(skipped.size(), 1u) << c.what;
    EXPECT_NE(skipped[0].find(newest_name), std::string::npos) << skipped[0];
    // Naming the damaged checkpoint explicitly is an error, not a fallback.
    Job named(Every(copy, 6, 1, 5));
    EXPECT_FALSE(named.Run(target).ok()) << c.what;
    // Resuming from the directory falls back to ckpt-24 and ends where an
    // uninterrupted run ends.
    Job fallback(Every(copy, 6, 1, 5));
    ASSERT_TRUE(fallback.Run().ok()) << c.what;
    Job straight(CheckpointOptions{});
    ASSERT_TRUE(straight.Run("", false).ok());
    EXPECT_TRUE(fallback.Dense() == straight.Dense()) << c.what;
    EXPECT_TRUE(fallback.Rows() == straight.Rows()) << c.what;
  }
}

// The manifest has its own checksum: every single-bit flip in it (here one
// bit of every byte) makes the checkpoint damaged, so a resume falls back
// past it. Before, a flip in dense_optimizer_steps, say, passed verify and
// resume and silently changed the model; one in step or num_workers made
// the resume fail instead of falling back.
TEST(CheckpointFaultTest, EveryManifestBitFlipIsDetected) {
  const std::string dir = FreshDir("ckpt-manifest-flips");
  {
    Job job(Every(dir, 10, 1, 5), 20);
    ASSERT_TRUE(job.Run().ok());
  }
  const std::string newest = Newest(dir);
  const std::string path = newest + "/" + kCheckpointManifestName;
  const uint64_t size = fs::file_size(path);
  std::ifstream in(path, std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(original.size(), size);
  int passed = 0;
  std::string first;
  for (uint64_t i = 0; i < size; ++i) {
    std::string bytes = original;
    bytes[i] = static_cast<char>(bytes[i] ^ (1 << (i % 8)));
    std::ofstream(path, std::ios::trunc | std::ios::binary) << bytes;
    if (VerifyCheckpoint(newest).ok()) {
      if (first.empty()) first = "byte " + std::to_string(i);
      ++passed;
    }
  }
  std::ofstream(path, std::ios::trunc | std::ios::binary) << original;
  EXPECT_EQ(passed, 0) << passed << " of " << size << " flips pass verify, the first at " << first;
  EXPECT_TRUE(VerifyCheckpoint(newest).ok());
}

// A version 1 manifest (written before manifests had a checksum) is read.
TEST(CheckpointFaultTest, ManifestWithoutChecksumOfVersionOneIsRead) {
  const std::string dir = FreshDir("ckpt-manifest-v1");
  {
    Job job(Every(dir, 10, 1, 5), 10);
    ASSERT_TRUE(job.Run().ok());
  }
  const std::string newest = Newest(dir);
  auto m = ReadCheckpointManifest(newest);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->has_manifest_crc32c());
  m->set_format_version(1);
  m->clear_manifest_crc32c();
  std::string bytes;
  ASSERT_TRUE(m->SerializeToString(&bytes));
  std::ofstream(newest + "/" + kCheckpointManifestName, std::ios::trunc | std::ios::binary) << bytes;
  EXPECT_TRUE(VerifyCheckpoint(newest).ok());
  // A version 2 manifest without its checksum is damaged.
  m->set_format_version(2);
  ASSERT_TRUE(m->SerializeToString(&bytes));
  std::ofstream(newest + "/" + kCheckpointManifestName, std::ios::trunc | std::ios::binary) << bytes;
  Status s = VerifyCheckpoint(newest);
  EXPECT_NE(s.message().find("does not end with its checksum"), std::string::npos) << s.ToString();
}

TEST(CheckpointFaultTest, ManifestNamingAbsentFileIsDetected) {
  const std::string dir = FreshDir("ckpt-absent");
  {
    Job job(Every(dir, 10, 1, 5), 20);
    ASSERT_TRUE(job.Run().ok());
  }
  const std::string newest = Newest(dir);
  auto m = ReadCheckpointManifest(newest);
  ASSERT_TRUE(m.ok());
  auto* e = m->add_files();
  e->set_path("shard-9999.rows");
  e->set_bytes(10);
  e->set_kind(ckpt::FileEntry::SHARD);
  // Rewritten with a valid checksum (a manifest that lies, not a damaged one).
  const std::string tmp = newest + ".tmp";
  fs::rename(newest, tmp);
  ASSERT_TRUE(CommitCheckpoint(tmp, newest, *m).ok());
  Status s = VerifyCheckpoint(newest);
  EXPECT_NE(s.message().find("shard-9999.rows listed in the manifest is missing"), std::string::npos)
      << s.ToString();
}

// A full disk (here: a file-size limit, so writes fail with EFBIG) fails
// the checkpoint being written, training goes on, and earlier checkpoints
// stay whole and resumable.
TEST(CheckpointFaultTest, FullDiskLeavesEarlierCheckpointsIntact) {
  const std::string dir = FreshDir("ckpt-full");
  Job job(Every(dir, 5, 1, 10), 12);
  VectorStream data(PlantedBatches(23, 32, kFields, 300, 11));
  // Fail every write beyond 2 KiB from step 6 on: the first checkpoint (at
  // step 5) is written before the limit.
  struct Limiter : BatchSource {
    BatchSource* inner;
    Trainer* trainer;
    rlimit saved{};
    bool limited = false;
    StatusOr<bool> Next(Batch* b) override {
      if (!limited && trainer->step() == 6) {
        getrlimit(RLIMIT_FSIZE, &saved);
        rlimit small = saved;
        small.rlim_cur = 2048;
        setrlimit(RLIMIT_FSIZE, &small);
        limited = true;
      }
      return inner->Next(b);
    }
    Status Rewind() override { return inner->Rewind(); }
    std::string SkippedSummary() const override { return ""; }
    StatusOr<std::string> SavePosition() const override { return inner->SavePosition(); }
    Status RestorePosition(const std::string& p) override { return inner->RestorePosition(p); }
  } limiter;
  limiter.inner = &data;
  limiter.trainer = job.trainer.get();
  signal(SIGXFSZ, SIG_IGN);
  auto r = job.trainer->Train(&limiter, nullptr);
  setrlimit(RLIMIT_FSIZE, &limiter.saved);
  signal(SIGXFSZ, SIG_DFL);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(job.trainer->step(), 12);
  EXPECT_EQ(job.trainer->checkpoints_written(), 1);
  // Counted, and the final one's failure reported (the job then exits 1).
  EXPECT_EQ(r->checkpoints_written, 1);
  EXPECT_EQ(r->checkpoints_failed, 2);  // step 10 and the final one, step 12
  EXPECT_NE(r->final_checkpoint_error.find(CheckpointName(12)), std::string::npos)
      << r->final_checkpoint_error;
  auto all = ListCheckpoints(dir);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u) << "a failed checkpoint left a directory behind";
  EXPECT_EQ(all->front().step, 5);
  EXPECT_TRUE(VerifyCheckpoint(all->front().path).ok());
}

// A crash inside a commit that replaces a checkpoint of the same step:
// after the old copy was moved aside and before the new one was renamed
// into place, only "ckpt-N.old" (whole) and "ckpt-N.tmp" exist. Resume puts
// the old copy back and goes on from it, bit for bit; a leftover ".old"
// beside its whole checkpoint is deleted.
TEST(CheckpointFaultTest, InterruptedReplaceIsRecovered) {
  Job ref(Every(FreshDir("ckpt-old-ref"), 5, 3));
  ASSERT_TRUE(ref.Run().ok());
  const std::string dir = FreshDir("ckpt-old");
  {
    Job first(Every(dir, 5, 3), 10);
    ASSERT_TRUE(first.Run().ok());
  }
  const std::string ten = dir + "/" + CheckpointName(10);
  fs::copy(dir + "/" + CheckpointName(5), dir + "/" + CheckpointName(5) + ".old",
           fs::copy_options::recursive);  // a leftover beside its checkpoint
  fs::rename(ten, ten + ".old");
  fs::create_directory(ten + ".tmp");
  std::ofstream(ten + ".tmp/dense.bin") << "half written";
  std::vector<std::string> notes;
  ASSERT_TRUE(RecoverInterruptedCommits(dir, &notes).ok());
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_FALSE(fs::exists(dir + "/" + CheckpointName(5) + ".old"));
  EXPECT_TRUE(VerifyCheckpoint(ten).ok());
  // Again, through a resumed job this time.
  fs::rename(ten, ten + ".old");
  Job second(Every(dir, 5, 3));
  ASSERT_TRUE(second.Run().ok());
  EXPECT_EQ(second.trainer->step(), 69);
  EXPECT_FALSE(fs::exists(ten + ".old"));
  EXPECT_TRUE(second.Dense() == ref.Dense());
  EXPECT_TRUE(second.Rows() == ref.Rows());
}

TEST(CheckpointFaultTest, FreshStartRefusesADirWithCheckpoints) {
  const std::string dir = FreshDir("ckpt-fresh");
  {
    Job job(Every(dir, 10, 1), 10);
    ASSERT_TRUE(job.Run().ok());
  }
  Job fresh(Every(dir, 10, 1));
  Status s = fresh.Run("", /*auto_resume=*/false);
  EXPECT_NE(s.message().find("already holds checkpoints (newest ckpt-0000000010)"),
            std::string::npos) << s.ToString();
  // One code name, not the decision's wrapped in another.
  EXPECT_EQ(s.ToString().find("Failed precondition: Failed precondition"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  // Every checkpoint damaged: refused too, rather than overwritten.
  FlipByte(dir + "/" + CheckpointName(10) + "/dense.bin", 3);
  Job again(Every(dir, 10, 1));
  s = again.Run();
  EXPECT_NE(s.message().find("none of them is usable"), std::string::npos) << s.ToString();
}

// A kill during the first checkpoint's write leaves only "ckpt-N.tmp": the
// same command run again starts fresh (and removes it) instead of refusing
// a directory that holds no checkpoint. Beside a whole checkpoint, a .tmp
// is ignored and removed too, and the resume uses the whole one.
TEST(CheckpointFaultTest, LeftoverTmpIsNeverACheckpoint) {
  const std::string dir = FreshDir("ckpt-tmp-only");
  fs::create_directories(dir + "/" + CheckpointName(20) + ".tmp");
  std::ofstream(dir + "/" + CheckpointName(20) + ".tmp/dense.bin") << "half written";
  Job fresh(Every(dir, 10, 1), 10);
  Status s = fresh.Run();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs::exists(dir + "/" + CheckpointName(20) + ".tmp"));
  EXPECT_TRUE(VerifyCheckpoint(dir + "/" + CheckpointName(10)).ok());
  // With auto_resume off too (a fresh start by choice).
  const std::string dir2 = FreshDir("ckpt-tmp-only-2");
  fs::create_directories(dir2 + "/" + CheckpointName(30) + ".tmp");
  Job fresh2(Every(dir2, 10, 1), 10);
  s = fresh2.Run("", /*auto_resume=*/false);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Newer than a whole checkpoint: the resume goes on from the whole one.
  fs::create_directories(dir + "/" + CheckpointName(40) + ".tmp");
  Job resumed(Every(dir, 10, 1), 20);
  std::string from;
  ASSERT_TRUE(resumed.trainer->Resume("", true, &from).ok());
  EXPECT_EQ(fs::path(from).filename().string(), CheckpointName(10));
  EXPECT_FALSE(fs::exists(dir + "/" + CheckpointName(40) + ".tmp"));
}

// The disk store a fresh job uses is recorded in its checkpoint dir, so a
// re-run can tell its own earlier attempt's rows from another job's.
TEST(CheckpointFaultTest, StorePathIsRecorded) {
  const std::string dir = FreshDir("ckpt-store-path");
  EXPECT_FALSE(StorePathRecorded(dir, "some/store"));
  ASSERT_TRUE(RecordStorePath(dir, "some/store").ok());
  EXPECT_TRUE(StorePathRecorded(dir, "some/store"));
  EXPECT_TRUE(StorePathRecorded(dir, "some/./store/"));
  EXPECT_FALSE(StorePathRecorded(dir, "other/store"));
  auto all = ListCheckpoints(dir);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST(CheckpointFaultTest, RefusesCheckpointOfAnotherModel) {
  const std::string dir = FreshDir("ckpt-mismatch");
  {
    Job job(Every(dir, 10, 1), 10);
    ASSERT_TRUE(job.Run().ok());
  }
  Job other(Every(dir, 10, 1), 0, /*emb_dim=*/8);
  Status s = other.Run();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dense parameter"), std::string::npos) << s.ToString();
}

TEST(CheckpointOptionsTest, Names) {
  EXPECT_EQ(CheckpointName(42), "ckpt-0000000042");
  EXPECT_EQ(CheckpointStep("ckpt-0000000042"), 42);
  EXPECT_EQ(CheckpointStep("ckpt-42"), -1);
  EXPECT_EQ(CheckpointStep("ckpt-0000000042.tmp"), -1);
}

}  // namespace
}  // namespace ctrps::worker
