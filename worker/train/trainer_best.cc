// Early stopping keeps the best evaluated model, not the last: a snapshot
// of the model (dense values and every embedding row, in checkpoint
// format, so any store size and any server count) is written when an
// evaluation is the best so far, and put back when training ends.
#include <filesystem>

#include <spdlog/spdlog.h>

#include "worker/train/model_io.h"
#include "worker/train/trainer.h"

namespace ctrps::worker {
namespace fs = std::filesystem;

bool Trainer::KeepsBest() const {
  return options_.early_stopping_patience > 0 && !options_.BestModelDir().empty();
}

Status Trainer::SaveBest() {
  const std::string dir = options_.BestModelDir();
  const std::string tmp = dir + ".tmp";
  const bool chief = !group_ || group_->index() == 0;
  RETURN_IF_ERROR_CTX(client_->Flush(), "the pushes before the best model's snapshot");
  Status s;
  if (chief) {
    s = [&]() -> Status {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      fs::create_directories(tmp, ec);
      if (ec) return Status::IOError("cannot create " + tmp + ": " + ec.message());
      ASSIGN_OR_RETURN(auto shards, client_->SaveShards(tmp, static_cast<uint32_t>(step_), 0));
      ckpt::CheckpointManifest m;
      m.set_step(step_);
      m.set_model_type(ModelTypeName(model_->options().type));
      m.set_virtual_shards(client_->NumVirtualShards());
      m.set_num_workers(group_ ? group_->size() : 1);
      m.set_chain_length(1);
      ckpt::DenseArray* a = m.add_dense_arrays();
      a->set_name("values");
      a->set_floats(model_->dense_size());
      a->set_offset(0);
      const std::string dense(reinterpret_cast<const char*>(model_->dense_values()),
                              model_->dense_size() * sizeof(float));
      ASSIGN_OR_RETURN(*m.add_files(), WriteCheckpointFile(tmp, kDenseFileName, dense,
                                                           ckpt::FileEntry::DENSE, 0));
      for (const storage::ShardFileInfo& f : shards) {
        ckpt::FileEntry* e = m.add_files();
        e->set_path(f.name);
        e->set_bytes(f.bytes);
        e->set_crc32(f.crc32);
        e->set_kind(ckpt::FileEntry::SHARD);
        e->set_index(f.shard);
        e->set_rows(f.rows);
      }
      return CommitCheckpoint(tmp, dir, m);
    }();
    if (!s.ok()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
  }
  s = AgreeWithChief(s, "the best model's snapshot at step " + std::to_string(step_));
  if (!s.ok()) {
    spdlog::warn("could not keep the best model (step {}): {}; early stopping will keep the last "
                 "model instead", step_, s.message());
    best_saved_step_ = -1;
    return Status::OK();
  }
  best_saved_step_ = step_;
  return Status::OK();
}

StatusOr<bool> Trainer::RestoreBest(int64_t step) {
  const std::string dir = options_.BestModelDir();
  const bool chief = !group_ || group_->index() == 0;
  // Every worker reads the snapshot's manifest and dense values itself (a
  // shared filesystem, as for checkpoints); worker 0 has the rows loaded.
  Status s = [&]() -> Status {
    ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(dir));
    if (m.step() != step)
      return Status::NotFound(dir + " holds step " + std::to_string(m.step()) + ", not " +
                              std::to_string(step));
    if (chief) RETURN_IF_ERROR(VerifyCheckpoint(dir));
    return Status::OK();
  }();
  if (group_ && group_->size() > 1) {
    ASSIGN_OR_RETURN(bool all, group_->AllTrue(s.ok(), "the check of the best model's snapshot"));
    if (s.ok() && !all) s = Status::NotFound("another worker cannot read " + dir);
  }
  if (!s.ok()) {
    spdlog::warn("the best model (step {}) cannot be restored, keeping the last one: {}", step,
                 s.message());
    return false;
  }
  if (chief) RETURN_IF_ERROR_CTX(client_->LoadShards({dir}), "restoring the best model's rows");
  ASSIGN_OR_RETURN(ckpt::CheckpointManifest m, ReadCheckpointManifest(dir));
  ASSIGN_OR_RETURN(std::string dense, ReadFileToString(dir + "/" + kDenseFileName));
  ASSIGN_OR_RETURN(const float* values,
                   DenseArrayIn(m, dense, "values", model_->dense_size(), dir));
  std::copy(values, values + model_->dense_size(), model_->dense_values());
  if (group_ && group_->size() > 1) {
    ASSIGN_OR_RETURN(bool all, group_->AllTrue(true, "the restore of the best model"));
    (void)all;
  }
  RETURN_IF_ERROR(CheckDenseReplicas("after restoring the best model"));
  return true;
}

}  // namespace ctrps::worker
