// Checkpoints of a training job (format: worker/train/checkpoint.proto):
// naming, writing files with checksums, committing a directory atomically
// (manifest last, then rename), listing, verifying, incremental chains,
// retention, and the compatibility check of a checkpoint against a model.
// The Trainer decides when to checkpoint and what goes in; this file knows
// the on-disk rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "ps/client.h"
#include "worker/nn/model.h"
#include "worker/train/checkpoint.pb.h"

namespace ctrps::worker {

inline constexpr char kCheckpointManifestName[] = "MANIFEST.pb";
inline constexpr char kDenseFileName[] = "dense.bin";

struct CheckpointOptions {
  std::string dir;            // root directory of the job's checkpoints; empty = off
  int64_t every_steps = 0;    // 0 = not by steps
  double every_seconds = 0;   // 0 = not by time
  bool at_end = true;         // one more when training ends
  int keep_last = 3;          // whole checkpoints kept (bases of kept increments too)
  // Every full_every-th checkpoint is full; the ones between hold only rows
  // updated since the previous checkpoint. 1 = every checkpoint full.
  int full_every = 1;
  std::string config_text;    // stored in the manifest
  int num_servers = 0;        // stored in the manifest (informational)
  Status Validate() const;
  bool enabled() const { return !dir.empty(); }
};

// "ckpt-0000001234"; parses back with CheckpointStep (-1 if not one).
std::string CheckpointName(int64_t step);
int64_t CheckpointStep(const std::string& name);

// Writes `bytes` to dir/name, fsyncs it, and describes it for the manifest.
StatusOr<ckpt::FileEntry> WriteCheckpointFile(const std::string& dir, const std::string& name,
                                              const std::string& bytes, ckpt::FileEntry::Kind kind,
                                              uint32_t index);

// Writes the manifest into tmp_dir (fsynced), renames tmp_dir to final_dir
// and fsyncs the parent: after this the checkpoint exists, whole.
[[nodiscard]] Status CommitCheckpoint(const std::string& tmp_dir, const std::string& final_dir,
                                      const ckpt::CheckpointManifest& manifest);

// The manifest of checkpoint `dir` (NotFound without one; Corruption if it
// is empty, does not parse, fails its own checksum, names another step
// than the directory's name, or is not a version this build reads).
StatusOr<ckpt::CheckpointManifest> ReadCheckpointManifest(const std::string& dir);

// Checks every file the manifest lists: present, size, crc32, and for
// shard files their structure; then the same for the chain's earlier
// checkpoints. Errors name the checkpoint and file.
[[nodiscard]] Status VerifyCheckpoint(const std::string& dir);

// The directories to load for checkpoint `dir`: its full checkpoint first,
// then each increment up to `dir` itself.
StatusOr<std::vector<std::string>> CheckpointChain(const std::string& dir);

struct CheckpointListing {
  std::string name, path;
  int64_t step = -1;
  // A "ckpt-N.tmp" directory: a commit that never happened. It is never a
  // checkpoint, whatever it holds.
  bool unfinished = false;
  bool whole = false;   // committed, with a manifest that reads (not verified)
  bool incremental = false;
};
// Checkpoint directories under root (committed and unfinished *.tmp), by step.
StatusOr<std::vector<CheckpointListing>> ListCheckpoints(const std::string& root);

// The newest checkpoint under root whose whole chain verifies. Each newer
// one that fails is described in *skipped ("ckpt-...: <why>"). NotFound if
// root holds no usable checkpoint.
StatusOr<std::string> FindResumableCheckpoint(const std::string& root,
                                              std::vector<std::string>* skipped);

// A crash between the two renames of a commit that replaces a checkpoint
// of the same step (a resumed run repeating it) leaves "ckpt-N.old", the
// whole earlier copy, and no "ckpt-N". This renames each such directory
// back, and deletes ".old" leftovers whose checkpoint exists; each action
// is described in *notes. For the job's one checkpoint writer, before it
// looks for a checkpoint to resume from.
[[nodiscard]] Status RecoverInterruptedCommits(const std::string& root,
                                               std::vector<std::string>* notes);

// Deletes the unfinished "ckpt-N.tmp" directories under root (a writer
// killed before its commit), each described in *notes. For the job's one
// checkpoint writer, before it writes: never for a directory that another
// job may be writing.
[[nodiscard]] Status RemoveUnfinishedCheckpoints(const std::string& root,
                                                 std::vector<std::string>* notes);

// The disk store (storage.path) of the job whose checkpoints are in root,
// recorded there when the job starts fresh: a re-run after a crash before
// the first commit finds that store's rows are its own earlier attempt's
// (no checkpoint holds them), not another job's.
[[nodiscard]] Status RecordStorePath(const std::string& root, const std::string& store_path);
bool StorePathRecorded(const std::string& root, const std::string& store_path);

// Deletes unfinished *.tmp directories and all but the newest keep_last
// whole checkpoints, never a checkpoint that a kept increment builds on.
[[nodiscard]] Status ApplyCheckpointRetention(const std::string& root, int keep_last);

// InvalidArgument unless the checkpoint was written for a model like
// `model` (type, dense parameters, embedding tables), with the same
// virtual shard count and number of workers (num_workers < 0: any); the
// message says what differs.
[[nodiscard]] Status CheckCheckpointMatches(const ckpt::CheckpointManifest& m, const Model& model,
                                            const std::vector<std::pair<int, int>>& table_dims_slots,
                                            uint32_t virtual_shards, int num_workers);

// The dense array `name` (values, or an optimizer state) of a checkpoint
// inside `dense`, the bytes of its dense.bin: InvalidArgument naming `dir`
// unless the manifest has it with `floats` floats that lie inside the file.
StatusOr<const float*> DenseArrayIn(const ckpt::CheckpointManifest& m, const std::string& dense,
                                    const std::string& name, uint64_t floats,
                                    const std::string& dir);

// For serving and evaluation: loads checkpoint `dir` (verified first, its
// chain included) into `model` (dense values only) and `client` (tables
// declared; rows with their optimizer state). Any worker or server count.
[[nodiscard]] Status LoadCheckpointWeights(const std::string& dir, Model* model,
                                           ps::EmbeddingClient* client);

}  // namespace ctrps::worker
