// Checkpoints under damage and failure: a corrupt newest checkpoint falls
// back to the previous whole one, every manifest bit flip is detected, a
// full disk leaves earlier checkpoints intact, an interrupted replace or a
// killed first write recovers, and a checkpoint of another model is refused.
#include "worker/train/checkpoint.h"

#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "storage/shard_file.h"
#include "tests/storage/temp_dir.h"
#include "tests/worker/train/checkpoint_job.h"
#include "tests/worker/train/test_util.h"

namespace ctrps::worker {
namespace {
namespace fs = std::filesystem;
using checkpoint_testing::Every;
using checkpoint_testing::FlipByte;
using checkpoint_testing::Job;
using checkpoint_testing::kFields;
using checkpoint_testing::kShards;
using checkpoint_testing::Newest;
using storage::testing::FreshDir;
using testing::PlantedBatches;
using testing::VectorStream;

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

}  // namespace
}  // namespace ctrps::worker
