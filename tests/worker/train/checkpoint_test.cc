// Checkpoints: resume bit for bit at any step (with admission and
// eviction, with a prefetched batch), a slow reader's restore keeping the
// waiting ranks alive, time-based checkpoints, incremental chains, retention
// and inspect. Damage and failures: checkpoint_fault_test.cc; shard files:
// shard_file_test.cc.
#include "worker/train/checkpoint.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "ps/client.h"
#include "ps/transport.h"
#include "ps/worker_group.h"
#include "storage/admission.h"
#include "storage/embedding_store.h"
#include "tests/storage/temp_dir.h"
#include "tests/worker/train/checkpoint_job.h"
#include "tests/worker/train/test_util.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
namespace {
namespace fs = std::filesystem;
using checkpoint_testing::Every;
using checkpoint_testing::Job;
using checkpoint_testing::kFields;
using checkpoint_testing::kShards;
using checkpoint_testing::Newest;
using storage::testing::FreshDir;
using testing::PlantedBatches;
using testing::VectorStream;

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

TEST(CheckpointOptionsTest, Names) {
  EXPECT_EQ(CheckpointName(42), "ckpt-0000000042");
  EXPECT_EQ(CheckpointStep("ckpt-0000000042"), 42);
  EXPECT_EQ(CheckpointStep("ckpt-42"), -1);
  EXPECT_EQ(CheckpointStep("ckpt-0000000042.tmp"), -1);
}

}  // namespace
}  // namespace ctrps::worker
