// The per-step time split of every worker of a distributed run, gathered on
// worker 0, and the slowest worker named: in BSP every step waits for the
// last worker, so the one with the most work of its own (reading and
// computing) sets the pace, while the others' surplus shows up as waiting
// (in pull, push and the allreduce).
#pragma once

#include <string>
#include <vector>

#include "common/metrics_writer.h"
#include "common/status.h"
#include "ps/worker_group.h"
#include "worker/train/trainer.h"

namespace ctrps::launch {

struct WorkerSplit {
  int worker = 0;  // index among the workers
  int rank = -1;   // MPI rank
  int64_t steps = 0;
  double seconds = 0;
  double read_s = 0, pull_s = 0, compute_s = 0, allreduce_s = 0, push_s = 0, wait_s = 0;

  double own_s() const { return read_s + compute_s; }
};

WorkerSplit SplitOf(const worker::TrainResult& r, int worker, int rank);

// Every worker calls it (a collective); worker 0 gets every worker's split
// in worker order, the others an empty vector.
[[nodiscard]] StatusOr<std::vector<WorkerSplit>> GatherWorkerSplits(ps::WorkerGroup* group,
                                                                    const WorkerSplit& mine);

// The index (into `splits`) of the worker with the most own work; -1 if empty.
int SlowestWorker(const std::vector<WorkerSplit>& splits);

// Summary lines: per worker, ms per step of each phase, the slowest marked
// with its own work per step against the least loaded worker's.
std::string FormatWorkerSplits(const std::vector<WorkerSplit>& splits);

// One "worker_split" metrics line per worker ("slowest": true on one).
void WriteWorkerSplitMetrics(const std::vector<WorkerSplit>& splits, MetricsWriter* metrics);

}  // namespace ctrps::launch
