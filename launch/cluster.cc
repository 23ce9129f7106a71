#include "launch/cluster.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/memory.h"
#include "launch/job_setup.h"
#include "ps/mpi_runtime.h"
#include "ps/remote_client.h"
#include "ps/server.h"

namespace ctrps::launch {
namespace {

[[noreturn]] void Fail(const std::string& command, const ps::ClusterLayout& layout, int rank,
                       const std::string& doing, const Status& s) {
  ps::MpiRuntime::Abort("ctrps " + command + ": " + layout.Describe(rank) + " failed while " +
                            doing + ": " + s.ToString() + "\nctrps " + command +
                            ": ending the whole job",
                        1);
}

}  // namespace

StatusOr<ClusterPlan> MakeClusterPlan(const LoadedConfig& c, int world_size, int servers_override) {
  const config::ClusterConfig& k = c.job.cluster();
  ClusterPlan p;
  switch (k.consistency()) {
    case config::ClusterConfig::BSP: p.consistency = ps::Consistency::kBSP; break;
    case config::ClusterConfig::ASP: p.consistency = ps::Consistency::kASP; break;
    case config::ClusterConfig::SSP: p.consistency = ps::Consistency::kSSP; break;
  }
  if (k.staleness() < 1 || k.staleness() > 1000)
    return Status::InvalidArgument(c.Where("cluster.staleness") + ": value " +
                                   std::to_string(k.staleness()) + " out of range [1, 1000]");
  if (k.server_threads() < 0 || k.server_threads() > 256)
    return Status::InvalidArgument(c.Where("cluster.server_threads") + ": value " +
                                   std::to_string(k.server_threads()) + " out of range [0, 256]");
  if (k.peer_timeout_ms() < 100 || k.peer_timeout_ms() > 86400000)
    return Status::InvalidArgument(c.Where("cluster.peer_timeout_ms") + ": value " +
                                   std::to_string(k.peer_timeout_ms()) +
                                   " out of range [100, 86400000]");
  p.staleness = k.staleness();
  p.server_threads = k.server_threads();
  if (p.server_threads == 0)
    p.server_threads = k.mode() == config::ClusterConfig::COLOCATED
                           ? 1 : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  p.peer_timeout_ms = k.peer_timeout_ms();
  const bool colocated = k.mode() == config::ClusterConfig::COLOCATED;
  int servers = servers_override >= 0 ? servers_override : k.servers();
  // In colocated mode the default of 1 server means "every rank".
  if (colocated && servers_override < 0 && !k.has_servers()) servers = 0;
  auto layout = ps::ClusterLayout::Make(world_size, servers, colocated,
                                        c.job.storage().virtual_shards());
  if (!layout.ok()) {
    const std::string from = servers_override >= 0 ? "--servers " + std::to_string(servers_override)
                                                   : c.Where("cluster.servers");
    return Status::InvalidArgument(from + " with " + std::to_string(world_size) + " ranks (" +
                                   (colocated ? "COLOCATED" : "DEDICATED") +
                                   " mode): " + layout.status().message());
  }
  p.layout = *std::move(layout);
  return p;
}

int RunDistributedTrain(const LoadedConfig& c, int servers_override, const std::string& resume) {
  return RunDistributed(c, servers_override, resume, "train", TrainWorker);
}

int RunDistributed(const LoadedConfig& c, int servers_override, const std::string& resume,
                   const std::string& command, const WorkerJob& work) {
  auto runtime_or = ps::MpiRuntime::Init(nullptr, nullptr);
  if (!runtime_or.ok()) {
    std::fprintf(stderr, "ctrps %s: %s\n", command.c_str(), runtime_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<ps::MpiRuntime> runtime = std::move(runtime_or).value();
  const int rank = runtime->rank();
  auto plan_or = MakeClusterPlan(c, runtime->size(), servers_override);
  if (!plan_or.ok()) {
    // Every rank computes the same plan; one of them says why.
    if (rank == 0)
      std::fprintf(stderr, "ctrps %s: bad cluster layout: %s\n", command.c_str(),
                   plan_or.status().message().c_str());
    return 2;
  }
  plan_or->layout.hosts = runtime->HostNames();  // every rank got here: a collective is safe
  const ClusterPlan plan = *plan_or;
  const ps::ClusterLayout& layout = plan.layout;
  const int worker_index = layout.WorkerIndex(rank);
  const bool is_server = layout.ServerIndex(rank) >= 0;
  const bool chief = worker_index == 0;
  InitLogging(chief ? c.job.output().log_level() : "warn", rank);
  if (layout.colocated && !runtime->thread_multiple()) {
    if (rank == 0)
      std::fprintf(stderr,
                   "ctrps %s: COLOCATED mode runs a server thread beside the worker and needs "
                   "an MPI library with MPI_THREAD_MULTIPLE; this one does not provide it\n",
                   command.c_str());
    return 2;
  }
  if (chief)
    spdlog::info("cluster: {} ranks{}, {} servers, {} workers{}, {} virtual shards, {}{}, {} thread{} per server",
                 layout.world_size,
                 layout.NumHosts() > 1 ? " on " + std::to_string(layout.NumHosts()) + " hosts"
                                       : std::string(),
                 layout.num_servers(), layout.num_workers(),
                 layout.colocated ? " (colocated)" : "", layout.num_virtual_shards,
                 ps::ConsistencyName(plan.consistency),
                 plan.consistency == ps::Consistency::kSSP
                     ? " staleness " + std::to_string(plan.staleness) : std::string(),
                 plan.server_threads, plan.server_threads == 1 ? "" : "s");

  ps::Transport* transport = runtime->transport();
  std::unique_ptr<ps::ParameterServer> server;
  if (is_server) {
    ps::ServerOptions so;
    so.layout = layout;
    so.consistency = plan.consistency;
    so.peer_timeout_ms = plan.peer_timeout_ms;
    so.threads = plan.server_threads;
    // One store per virtual shard: RocksDB/tiered shards live in
    // storage.path/shard-NNNN (disjoint across servers, so the servers of
    // one machine can share the path), memory budgets split over them.
    const int S = layout.num_servers(), V = layout.num_virtual_shards;
    const int me = layout.ServerIndex(rank);
    const uint32_t here = static_cast<uint32_t>((V - me + S - 1) / S);
    so.new_store = [&c, V, here](uint32_t v) {
      return MakeShardStore(c, v, static_cast<uint32_t>(V), here);
    };
    auto s = ps::NewParameterServer(so, transport);
    if (!s.ok()) Fail(command, layout, rank, "starting the parameter server", s.status());
    server = std::move(s).value();
  }
  if (worker_index < 0) {
    Status s = server->Run();
    if (!s.ok()) Fail(command, layout, rank, "serving embedding shards", s);
    if (c.job.storage().kind() == config::StorageConfig::TIERED)
      std::fprintf(stderr, "ctrps %s: %s: peak RSS %s, storage.dram_budget_bytes %s\n", command.c_str(),
                   layout.Describe(rank).c_str(), HumanBytes(PeakRssBytes()).c_str(),
                   HumanBytes(c.job.storage().dram_budget_bytes()).c_str());
    return 0;
  }
  std::thread server_thread;
  if (server) {
    server_thread = std::thread([&] {
      Status s = server->Run();
      if (!s.ok()) Fail(command, layout, rank, "serving embedding shards", s);
    });
  }
  ps::RemoteClientOptions co;
  co.layout = layout;
  co.consistency = plan.consistency;
  co.staleness = plan.staleness;
  co.peer_timeout_ms = plan.peer_timeout_ms;
  auto client = ps::NewRemoteClient(co, transport);
  ps::WorkerGroup group(transport, layout.worker_ranks, plan.peer_timeout_ms);
  WorkerRole role;
  role.client = client.get();
  role.group = &group;
  role.worker_index = worker_index;
  role.num_workers = layout.num_workers();
  role.chief = chief;
  role.overlap_pull = plan.consistency != ps::Consistency::kBSP;
  role.resume = resume;
  role.num_servers = layout.num_servers();
  role.worker_ranks = layout.worker_ranks;
  Status s = work(c, role);
  if (!s.ok()) Fail(command, layout, rank, command == "train" ? "training" : "running " + command, s);
  s = client->Shutdown();
  if (!s.ok()) Fail(command, layout, rank, "shutting down", s);
  if (server_thread.joinable()) server_thread.join();
  return 0;
}

}  // namespace ctrps::launch
