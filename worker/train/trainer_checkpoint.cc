// The trainer's checkpoints: when to take one, what each worker and the
// chief write, and resuming from one (worker/train/checkpoint.h has the
// on-disk rules).
#include <chrono>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "worker/nn/dense_optimizer.h"
#include "worker/train/clock.h"
#include "worker/train/model_io.h"
#include "common/status_wire.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
namespace fs = std::filesystem;
namespace {

std::string WorkerFileName(int w) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "worker-%04d.state", w);
  return buf;
}

std::vector<char> StatusBytes(const Status& s) {
  const std::string text = EncodeStatus(s);
  return std::vector<char>(text.begin(), text.end());
}

}  // namespace

Status Trainer::AgreeWithChief(const Status& chief_status, const std::string& what) {
  if (!group_ || group_->size() < 2) return chief_status;
  std::vector<char> bytes = StatusBytes(chief_status);
  RETURN_IF_ERROR(group_->Broadcast(&bytes, what));
  return DecodeStatus(std::string(bytes.begin(), bytes.end()));
}

StatusOr<bool> Trainer::CheckpointDue() {
  const CheckpointOptions& co = options_.checkpoint;
  if (co.every_steps > 0 && step_ % co.every_steps == 0) return true;
  if (co.every_seconds <= 0) return false;
  const bool distributed = group_ && group_->size() > 1;
  // Workers' clocks differ: worker 0 decides, every 16 steps when there
  // are several workers (one small broadcast).
  if (distributed && step_ % 16 != 0) return false;
  bool due = Since(started_) - last_checkpoint_time_ >= co.every_seconds;
  if (distributed) {
    std::vector<char> b(1, due ? 1 : 0);
    RETURN_IF_ERROR(group_->Broadcast(&b, "the checkpoint timer at step " + std::to_string(step_)));
    due = !b.empty() && b[0] == 1;
  }
  return due;
}

Status Trainer::Checkpoint(const LoopState& p, const std::string& reader_position) {
  const CheckpointOptions& co = options_.checkpoint;
  const auto t0 = std::chrono::steady_clock::now();
  const bool chief = !group_ || group_->index() == 0;
  const int me = group_ ? group_->index() : 0;
  const std::string name = CheckpointName(step_);
  const std::string final_dir = co.dir + "/" + name, tmp = final_dir + ".tmp";
  const std::string what = "checkpoint " + name;
  RETURN_IF_ERROR_CTX(client_->Flush(), "the pushes before " + what);

  // 1. Worker 0 makes the directory (a shared filesystem under mpirun).
  Status prep;
  if (chief) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) prep = Status::IOError("cannot create " + tmp + ": " + ec.message());
  }
  Status outcome = AgreeWithChief(prep, what);

  // 2. Every worker writes its position; worker 0 gathers the entries.
  std::vector<ckpt::FileEntry> worker_files;
  if (outcome.ok()) {
    ckpt::WorkerState st;
    st.set_worker(me);
    st.set_step(step_);
    st.set_epoch(p.epoch);
    st.set_reader_position(reader_position);
    st.set_model_rng_state(model_->rng_state());
    if (hook_) {
      std::string hs = hook_->SaveState();
      if (!hs.empty()) st.set_hook_state(std::move(hs));
    }
    st.set_samples(p.result->samples);
    st.set_evals_without_gain(p.evals_without_gain);
    if (p.result->best_valid.auc >= 0) {
      st.set_has_best_valid(true);
      st.set_best_valid_auc(p.result->best_valid.auc);
      st.set_best_valid_logloss(p.result->best_valid.logloss);
      st.set_best_valid_rows(p.result->best_valid.rows);
    }
    if (p.result->best_valid_step >= 0) st.set_best_valid_step(p.result->best_valid_step);
    st.set_finished(p.finished);
    st.set_early_stopped(p.result->early_stopped);
    auto entry = WriteCheckpointFile(tmp, WorkerFileName(me), st.SerializeAsString(),
                                     ckpt::FileEntry::WORKER, static_cast<uint32_t>(me));
    std::vector<char> mine;
    if (entry.ok()) {
      const std::string b = "1" + entry->SerializeAsString();
      mine.assign(b.begin(), b.end());
    } else {
      const std::string b = "0" + entry.status().message();
      mine.assign(b.begin(), b.end());
    }
    std::vector<std::vector<char>> all;
    if (group_ && group_->size() > 1) {
      ASSIGN_OR_RETURN(all, group_->Gather(std::move(mine), "the worker files of " + what));
    } else {
      all.push_back(std::move(mine));
    }
    Status commit;
    if (chief) {
      for (size_t w = 0; w < all.size() && commit.ok(); ++w) {
        const std::string b(all[w].begin(), all[w].end());
        ckpt::FileEntry e;
        if (b.empty() || b[0] != '1')
          commit = Status::IOError("worker " + std::to_string(w) + ": " +
                                   (b.empty() ? std::string("no reply") : b.substr(1)));
        else if (!e.ParseFromString(b.substr(1)))
          commit = Status::Corruption("worker " + std::to_string(w) + " sent a bad file entry");
        else
          worker_files.push_back(e);
      }
      if (commit.ok()) commit = CommitCheckpointAsChief(tmp, final_dir, p, std::move(worker_files));
      if (!commit.ok()) {
        std::error_code ec;
        fs::remove_all(tmp, ec);  // earlier checkpoints stay as they were
      }
    }
    outcome = AgreeWithChief(commit, what);
  }
  const double secs = Since(t0);
  checkpoint_seconds_ += secs;
  checkpoint_pauses_.push_back(secs);
  last_checkpoint_time_ = Since(started_);
  if (!outcome.ok()) {
    ++checkpoints_failed_;
    if (p.finished) final_checkpoint_error_ = what + ": " + outcome.message();
    spdlog::error("{} failed{}, earlier checkpoints are intact: {}", what,
                  p.finished ? "" : ", training goes on", outcome.message());
    if (metrics_)
      metrics_->Write(JsonLine().Add("event", "checkpoint_failed").Add("step", step_)
                          .Add("error", outcome.message()));
    return Status::OK();
  }
  ++checkpoints_written_;
  return Status::OK();
}

Status Trainer::CommitCheckpointAsChief(const std::string& tmp, const std::string& final_dir,
                                        const LoopState& p,
                                        std::vector<ckpt::FileEntry> worker_files) {
  const CheckpointOptions& co = options_.checkpoint;
  const auto t0 = std::chrono::steady_clock::now();
  const bool incremental = co.full_every > 1 && !last_checkpoint_.empty() &&
                           chain_length_ < co.full_every && last_checkpoint_step_ < step_;
  const uint32_t since = incremental ? static_cast<uint32_t>(last_checkpoint_step_) : 0;
  ASSIGN_OR_RETURN(auto shards, client_->SaveShards(tmp, static_cast<uint32_t>(step_), since));

  ckpt::CheckpointManifest m;
  m.set_step(step_);
  m.set_epoch(p.epoch);
  m.set_created_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
  m.set_config_text(co.config_text);
  m.set_model_type(ModelTypeName(model_->options().type));
  m.set_virtual_shards(client_->NumVirtualShards());
  m.set_num_workers(group_ ? group_->size() : 1);
  m.set_num_servers(co.num_servers);
  m.set_incremental(incremental);
  if (incremental) {
    m.set_base(last_checkpoint_);
    m.set_since_step(last_checkpoint_step_);
  }
  m.set_chain_length(incremental ? chain_length_ + 1 : 1);
  ASSIGN_OR_RETURN(auto slot_opt, ps::NewSparseOptimizer(options_.sparse_optimizer));
  for (int f = 0; f < model_->options().num_fields; ++f) {
    ckpt::TableInfo* t = m.add_tables();
    t->set_table_id(model_->options().TableOf(f));
    t->set_dim(model_->RowWidth(f));
    t->set_slot_floats(slot_opt->SlotFloats(model_->RowWidth(f)));
  }
  for (const DenseParamInfo& d : model_->DenseParams()) {
    ckpt::DenseParam* dp = m.add_dense_params();
    dp->set_name(d.name);
    dp->set_rows(d.rows);
    dp->set_cols(d.cols);
    dp->set_offset(d.offset);
  }
  // dense.bin: the values, then each optimizer state array.
  std::string dense(reinterpret_cast<const char*>(model_->dense_values()),
                    model_->dense_size() * sizeof(float));
  ckpt::DenseArray* a = m.add_dense_arrays();
  a->set_name("values");
  a->set_floats(model_->dense_size());
  a->set_offset(0);
  for (const OptimizerStateArray& s : dense_optimizer_->state()) {
    a = m.add_dense_arrays();
    a->set_name(s.name);
    a->set_floats(s.size);
    a->set_offset(dense.size() / sizeof(float));
    dense.append(reinterpret_cast<const char*>(s.data), s.size * sizeof(float));
  }
  m.set_dense_optimizer_steps(dense_optimizer_->steps());
  ASSIGN_OR_RETURN(ckpt::FileEntry dense_entry,
                   WriteCheckpointFile(tmp, kDenseFileName, dense, ckpt::FileEntry::DENSE, 0));
  *m.add_files() = dense_entry;
  ASSIGN_OR_RETURN(ckpt::FileEntry config_entry,
                   WriteCheckpointFile(tmp, "config.pbtxt", co.config_text, ckpt::FileEntry::CONFIG, 0));
  *m.add_files() = config_entry;
  for (auto& w : worker_files) *m.add_files() = std::move(w);
  uint64_t bytes = dense_entry.bytes(), rows = 0;
  for (const storage::ShardFileInfo& s : shards) {
    ckpt::FileEntry* e = m.add_files();
    e->set_path(s.name);
    e->set_bytes(s.bytes);
    e->set_crc32(s.crc32);
    e->set_kind(ckpt::FileEntry::SHARD);
    e->set_index(s.shard);
    e->set_rows(s.rows);
    bytes += s.bytes;
    rows += s.rows;
    for (const auto& [table, n] : s.table_rows)
      if (table >= 0 && table < m.tables_size())
        m.mutable_tables(table)->set_rows(m.tables(table).rows() + n);
  }
  RETURN_IF_ERROR(CommitCheckpoint(tmp, final_dir, m));
  last_checkpoint_ = fs::path(final_dir).filename().string();
  last_checkpoint_step_ = step_;
  chain_length_ = m.chain_length();
  // The checkpoint is committed: failing to delete older ones does not
  // make it a failed checkpoint (it would be counted as one, and its
  // increments would build on a base the trainer thinks absent).
  Status retention = ApplyCheckpointRetention(co.dir, co.keep_last);
  if (!retention.ok())
    spdlog::warn("{} written, but older checkpoints could not be removed: {}", last_checkpoint_,
                 retention.message());
  const double secs = Since(t0);
  spdlog::info("checkpoint {}: {} rows{}, {:.1f} MB in {:.2f}s ({:.0f} MB/s)", last_checkpoint_,
               rows, incremental ? " changed since " + m.base() : std::string(" (full)"),
               bytes / 1e6, secs, bytes / 1e6 / std::max(secs, 1e-9));
  if (metrics_)
    metrics_->Write(JsonLine()
                        .Add("event", "checkpoint")
                        .Add("step", step_)
                        .Add("name", last_checkpoint_)
                        .Add("incremental", incremental)
                        .Add("rows", static_cast<int64_t>(rows))
                        .Add("bytes", static_cast<int64_t>(bytes))
                        .Add("seconds", secs)
                        .Add("mb_per_s", bytes / 1e6 / std::max(secs, 1e-9))
                        .Add("at_seconds", Since(started_)));
  return Status::OK();
}

Status Trainer::Resume(const std::string& requested, bool auto_resume,
                       std::string* resumed_from) {
  resumed_from->clear();
  const bool chief = !group_ || group_->index() == 0;
  std::string chosen;
  Status decision;
  if (chief) {
    const std::string own = options_.checkpoint.dir;
    const std::string root = requested.empty() ? (auto_resume ? own : "") : requested;
    std::error_code ec;
    std::vector<std::string> dirs;  // where an interrupted commit may need undoing
    if (!root.empty()) dirs.push_back(root);
    if (!own.empty() && own != root) dirs.push_back(own);
    for (const std::string& dir : dirs) {
      std::vector<std::string> notes;
      decision = RecoverInterruptedCommits(dir, &notes);
      for (const std::string& n : notes) spdlog::warn("checkpoint dir {}: {}", dir, n);
      if (!decision.ok()) break;
    }
    if (decision.ok() && !own.empty()) {
      // This job is its checkpoint dir's one writer, and it writes nothing
      // yet: a "ckpt-N.tmp" there is a commit an earlier attempt never
      // made (a kill mid-write), never a checkpoint.
      std::vector<std::string> notes;
      decision = RemoveUnfinishedCheckpoints(own, &notes);
      for (const std::string& n : notes) spdlog::warn("checkpoint dir {}: {}", own, n);
    }
    if (decision.ok() && !root.empty() && fs::exists(root + "/" + kCheckpointManifestName, ec)) {
      // One named checkpoint: it must be whole; no fallback.
      decision = VerifyCheckpoint(root);
      if (decision.ok()) chosen = root;
    } else if (decision.ok() && !root.empty()) {
      std::vector<std::string> skipped;
      auto found = FindResumableCheckpoint(root, &skipped);
      for (const std::string& s : skipped)
        spdlog::warn("not resuming from {}; trying the previous checkpoint", s);
      if (found.ok()) {
        chosen = *found;
        if (!skipped.empty())
          spdlog::warn("falling back to {}, the newest whole checkpoint",
                       fs::path(chosen).filename().string());
      } else if (!requested.empty()) {
        decision = Status::NotFound("--resume " + requested + ": no usable checkpoint there" +
                                    (skipped.empty() ? std::string() : " (" + skipped[0] + ")"));
      }
    }
    if (decision.ok() && chosen.empty() && !own.empty()) {
      // A fresh start must not mix its checkpoints with earlier ones.
      auto existing = ListCheckpoints(own);
      std::string newest;
      if (existing.ok())
        for (const CheckpointListing& l : *existing)
          if (!l.unfinished) newest = l.name;
      if (!newest.empty())
        decision = Status::FailedPrecondition(
            "checkpoint.dir " + own + " already holds checkpoints (newest " + newest +
            ") that this run would not resume from" +
            (auto_resume ? " (none of them is usable, see above)"
                         : " (checkpoint.auto_resume is false)") +
            ": move them away, or choose another checkpoint.dir");
    }
  }
  // Worker 0's choice (or error) goes to every worker.
  std::vector<char> bytes;
  if (chief) {
    const std::string b = decision.ok() ? "P" + chosen : "E" + EncodeStatus(decision);
    bytes.assign(b.begin(), b.end());
  }
  if (group_ && group_->size() > 1)
    RETURN_IF_ERROR(group_->Broadcast(&bytes, "the choice of checkpoint to resume from"));
  const std::string b(bytes.begin(), bytes.end());
  if (b.empty()) return Status::Corruption("empty resume decision from worker 0");
  if (b[0] == 'E') return DecodeStatus(b.substr(1));
  chosen = b.substr(1);
  if (chosen.empty()) return Status::OK();
  Status s = RestoreFrom(chosen);
  // Nobody trains until every worker (and, through worker 0, every
  // server) has restored.
  if (group_ && group_->size() > 1) {
    ASSIGN_OR_RETURN(bool all, group_->AllTrue(s.ok(), "the end of the restore"));
    if (s.ok() && !all) return Status::Unavailable("another worker failed to restore " + chosen);
  }
  RETURN_IF_ERROR_CTX(s, "resuming from " + chosen);
  *resumed_from = chosen;
  return Status::OK();
}

Status Trainer::RestoreFrom(const std::string& dir) {
  const bool chief = !group_ || group_->index() == 0;
  const int me = group_ ? group_->index() : 0;
  ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(dir));
  ASSIGN_OR_RETURN(auto slot_opt, ps::NewSparseOptimizer(options_.sparse_optimizer));
  std::vector<std::pair<int, int>> tables;
  for (int f = 0; f < model_->options().num_fields; ++f)
    tables.emplace_back(model_->RowWidth(f), slot_opt->SlotFloats(model_->RowWidth(f)));
  RETURN_IF_ERROR(CheckCheckpointMatches(m, *model_, tables, client_->NumVirtualShards(),
                                         group_ ? group_->size() : 1));
  ASSIGN_OR_RETURN(std::vector<std::string> chain, CheckpointChain(dir));
  if (chief) RETURN_IF_ERROR(client_->LoadShards(chain));

  // Dense values and optimizer state.
  ASSIGN_OR_RETURN(std::string dense, ReadFileToString(dir + "/" + kDenseFileName));
  auto array = [&](const std::string& name, size_t floats) {
    return DenseArrayIn(m, dense, name, floats, dir);
  };
  ASSIGN_OR_RETURN(const float* values, array("values", model_->dense_size()));
  std::memcpy(model_->dense_values(), values, model_->dense_size() * sizeof(float));
  for (const OptimizerStateArray& s : dense_optimizer_->state()) {
    ASSIGN_OR_RETURN(const float* src, array(s.name, s.size));
    std::memcpy(s.data, src, s.size * sizeof(float));
  }
  dense_optimizer_->set_steps(m.dense_optimizer_steps());

  // This worker's position.
  ASSIGN_OR_RETURN(std::string ws, ReadFileToString(dir + "/" + WorkerFileName(me)));
  auto state = std::make_unique<ckpt::WorkerState>();
  if (!state->ParseFromString(ws) || state->worker() != me || state->step() != m.step())
    return Status::Corruption(dir + "/" + WorkerFileName(me) + " is not worker " +
                              std::to_string(me) + "'s state at step " + std::to_string(m.step()));
  model_->set_rng_state(state->model_rng_state());
  step_ = state->step();
  last_checkpoint_ = fs::path(dir).filename().string();
  last_checkpoint_step_ = step_;
  chain_length_ = m.chain_length();
  resume_ = std::move(state);
  spdlog::info("resumed from {} (step {}, epoch {}{})", last_checkpoint_, step_, resume_->epoch() + 1,
               chain.size() > 1 ? ", " + std::to_string(chain.size() - 1) + " increments" : "");
  return Status::OK();
}

}  // namespace ctrps::worker
