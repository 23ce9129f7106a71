// MPI start-up, shut-down and abort, and the MPI Transport. The only file
// outside ps/*.cc that knows MPI exists; no MPI type appears here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "ps/transport.h"

namespace ctrps::ps {

class MpiRuntime {
 public:
  // MPI_Init_thread asking for MPI_THREAD_MULTIPLE (a colocated rank runs
  // its server on a second thread); the error says if it was refused.
  static StatusOr<std::unique_ptr<MpiRuntime>> Init(int* argc, char*** argv);
  // MPI_Finalize.
  ~MpiRuntime();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool thread_multiple() const { return thread_multiple_; }
  // The transport over MPI_COMM_WORLD (two duplicated communicators, one
  // per channel). Owned by the runtime.
  Transport* transport() { return transport_.get(); }
  // Every rank's host (MPI_Get_processor_name), indexed by rank. Collective:
  // every rank must call it.
  std::vector<std::string> HostNames() const;

  // Ends the whole job (every rank) after printing `message` to stderr.
  [[noreturn]] static void Abort(const std::string& message, int exit_code);

 private:
  MpiRuntime() = default;
  int rank_ = 0, size_ = 1;
  bool thread_multiple_ = false;
  std::unique_ptr<Transport> transport_;
};

// True when this process was started by mpirun with more than one rank
// (OpenMPI or a PMI launcher sets the world size in the environment).
bool LaunchedUnderMpi();

}  // namespace ctrps::ps
