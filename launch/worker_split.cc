#include "launch/worker_split.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace ctrps::launch {
namespace {

// The wire form: the fixed-size struct, gathered between processes of one
// build of one binary.
static_assert(std::is_trivially_copyable_v<WorkerSplit>);

}  // namespace

WorkerSplit SplitOf(const worker::TrainResult& r, int worker, int rank) {
  WorkerSplit s;
  s.worker = worker;
  s.rank = rank;
  s.steps = r.steps;
  s.seconds = r.train_seconds;
  s.read_s = r.read_s;
  s.pull_s = r.pull_s;
  s.compute_s = r.compute_s;
  s.allreduce_s = r.allreduce_s;
  s.push_s = r.push_s;
  s.wait_s = r.wait_s;
  return s;
}

StatusOr<std::vector<WorkerSplit>> GatherWorkerSplits(ps::WorkerGroup* group,
                                                      const WorkerSplit& mine) {
  std::vector<char> bytes(sizeof(WorkerSplit));
  std::memcpy(bytes.data(), &mine, sizeof(mine));
  ASSIGN_OR_RETURN(auto all, group->Gather(std::move(bytes), "the gather of the time split"));
  std::vector<WorkerSplit> out;
  for (size_t w = 0; w < all.size(); ++w) {
    if (all[w].size() != sizeof(WorkerSplit))
      return Status::Corruption("worker " + std::to_string(w) + " sent " +
                                std::to_string(all[w].size()) + " bytes of time split, expected " +
                                std::to_string(sizeof(WorkerSplit)));
    WorkerSplit s;
    std::memcpy(&s, all[w].data(), sizeof(s));
    out.push_back(s);
  }
  return out;
}

int SlowestWorker(const std::vector<WorkerSplit>& splits) {
  int best = -1;
  for (size_t i = 0; i < splits.size(); ++i)
    if (best < 0 || splits[i].own_s() > splits[best].own_s()) best = static_cast<int>(i);
  return best;
}

std::string FormatWorkerSplits(const std::vector<WorkerSplit>& splits) {
  if (splits.empty()) return "";
  const int slowest = SlowestWorker(splits);
  double least = splits[0].own_s();
  for (const WorkerSplit& s : splits) least = std::min(least, s.own_s());
  std::string out = "  per worker       ms per step: read / pull / compute / allreduce / push / wait\n";
  for (size_t i = 0; i < splits.size(); ++i) {
    const WorkerSplit& s = splits[i];
    const double k = s.steps > 0 ? 1000.0 / s.steps : 0;
    char line[256];
    std::snprintf(line, sizeof(line), "    worker %d (rank %d)  %.2f / %.2f / %.2f / %.2f / %.2f / %.2f",
                  s.worker, s.rank, s.read_s * k, s.pull_s * k, s.compute_s * k,
                  s.allreduce_s * k, s.push_s * k, s.wait_s * k);
    out += line;
    if (static_cast<int>(i) == slowest && splits.size() > 1) {
      char why[160];
      std::snprintf(why, sizeof(why),
                    "  <- slowest: rank %d, own work (read + compute) %.2f ms/step, %.2fx the "
                    "least loaded worker's", s.rank, (s.read_s + s.compute_s) * k,
                    least > 0 ? s.own_s() / least : 1.0);
      out += why;
    }
    out += "\n";
  }
  return out;
}

void WriteWorkerSplitMetrics(const std::vector<WorkerSplit>& splits, MetricsWriter* metrics) {
  const int slowest = SlowestWorker(splits);
  for (size_t i = 0; i < splits.size(); ++i) {
    const WorkerSplit& s = splits[i];
    metrics->Write(JsonLine().Add("event", "worker_split").Add("worker", s.worker)
                       .Add("rank", s.rank).Add("steps", static_cast<long long>(s.steps))
                       .Add("seconds", s.seconds).Add("read_s", s.read_s).Add("pull_s", s.pull_s)
                       .Add("compute_s", s.compute_s).Add("allreduce_s", s.allreduce_s)
                       .Add("push_s", s.push_s).Add("wait_s", s.wait_s)
                       .Add("slowest", static_cast<int>(i) == slowest));
  }
}

}  // namespace ctrps::launch
