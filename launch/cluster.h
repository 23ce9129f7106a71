// Distributed `ctrps train` under mpirun: maps the cluster section of the
// config (and --servers) to a layout, gives each rank its role (server,
// worker, or both), and turns any rank's failure into MPI_Abort so the
// whole job ends with a message instead of hanging.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "launch/config_loader.h"
#include "ps/client.h"
#include "ps/layout.h"
#include "ps/worker_group.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

struct ClusterPlan {
  ps::ClusterLayout layout;
  ps::Consistency consistency = ps::Consistency::kBSP;
  int staleness = 2;
  int64_t peer_timeout_ms = 120000;
  int server_threads = 1;  // cluster.server_threads, 0 resolved
};

// The plan for `world_size` ranks; servers_override >= 0 replaces
// cluster.servers (the --servers flag). Impossible layouts and bad values
// are InvalidArgument naming the field, before anything starts.
StatusOr<ClusterPlan> MakeClusterPlan(const LoadedConfig& c, int world_size, int servers_override);

// What one training process does: its embedding client, its worker group
// (null: single process), and whether it writes the job's outputs.
struct WorkerRole {
  ps::EmbeddingClient* client = nullptr;
  ps::WorkerGroup* group = nullptr;
  int worker_index = 0;
  int num_workers = 1;
  bool chief = true;          // writes metrics, config, the model and the summary
  bool overlap_pull = false;  // asynchronous modes
  std::string resume;         // --resume: a checkpoint or checkpoint root ("" = config's)
  int num_servers = 0;        // recorded in checkpoints
  std::vector<int> worker_ranks;  // MPI rank of each worker, in worker order (distributed)
};

// Trains with `role` (launch/cmd_train.cc): data partition worker_index of
// num_workers, evaluation, test and (chief) the saved model and summary.
[[nodiscard]] Status TrainWorker(const LoadedConfig& c, const WorkerRole& role);

// A batch stream over this worker's partition of `path`.
StatusOr<std::unique_ptr<worker::BatchSource>> OpenPartitionedBatchSource(
    const LoadedConfig& c, const std::string& path, bool training, int reader_index,
    int num_readers);

// Runs this rank's part of a distributed training job and returns the exit
// code (0, or 2 for a bad layout). Any failure after start-up ends every
// rank through MPI_Abort and does not return.
int RunDistributedTrain(const LoadedConfig& c, int servers_override, const std::string& resume);

// The same for any worker's job (`command` names it in messages, e.g.
// "compress"): servers serve, every worker runs work(c, role).
using WorkerJob = std::function<Status(const LoadedConfig& c, const WorkerRole& role)>;
int RunDistributed(const LoadedConfig& c, int servers_override, const std::string& resume,
                   const std::string& command, const WorkerJob& work);

}  // namespace ctrps::launch
