// Keep-alives on the MPI transport, between two real ranks under mpirun
// (-np 2): they carry a wait through a quiet spell longer than its timeout,
// are never returned (not even to a kAnyTag wait), and without them the
// same wait times out. Prints what failed and exits 1; exits 0 when every
// check passes. (The in-process transport: tests/ps/keep_alive_test.cc.)
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "ps/keep_alive.h"
#include "ps/mpi_runtime.h"

using namespace ctrps;
using namespace ctrps::ps;

namespace {

constexpr int64_t kTimeoutMs = 300;
int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "mpi_keep_alive_check: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// Rank 1 is quiet for 4 timeouts (keeping alive or not), then sends `text`;
// rank 0 waits for it once with kTimeoutMs on `tag` and returns what came.
StatusOr<Message> Round(Transport* t, bool keep_alive, int tag, const std::string& text) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (t->rank() == 1) {
    {
      std::unique_ptr<KeepAlive> alive;
      if (keep_alive) alive = std::make_unique<KeepAlive>(t, kTimeoutMs / 4);
      std::this_thread::sleep_for(std::chrono::milliseconds(4 * kTimeoutMs));
    }
    Check(t->Send(0, Channel::kWorker, kTagCollective, std::vector<char>(text.begin(), text.end())).ok(),
          "send");
    return Message{};
  }
  return t->Recv(Channel::kWorker, 1, tag, kTimeoutMs);
}

}  // namespace

int main(int argc, char** argv) {
  auto runtime = MpiRuntime::Init(&argc, &argv);
  if (!runtime.ok() || (*runtime)->size() != 2) {
    std::fprintf(stderr, "usage: mpirun -np 2 mpi_keep_alive_check\n");
    return 2;
  }
  Transport* t = (*runtime)->transport();
  if (!(*runtime)->thread_multiple()) {
    std::fprintf(stderr, "mpi_keep_alive_check: MPI_THREAD_MULTIPLE is not provided\n");
    return 1;
  }
  for (int tag : {kTagCollective, kAnyTag}) {
    auto m = Round(t, true, tag, "kept");
    if (t->rank() == 0) {
      Check(m.ok(), "a kept-alive wait (tag " + std::to_string(tag) + ") timed out: " + m.status().ToString());
      if (m.ok())
        Check(m->tag == kTagCollective && std::string(m->payload.begin(), m->payload.end()) == "kept",
              "the kept-alive wait (tag " + std::to_string(tag) + ") returned something else");
    }
  }
  auto m = Round(t, false, kTagCollective, "late");
  if (t->rank() == 0) {
    Check(m.status().code() == Status::Code::kUnavailable, "a wait without keep-alives did not time out");
    auto late = t->Recv(Channel::kWorker, 1, kTagCollective, 30000);  // take the late message
    Check(late.ok(), "the late message never came");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (t->rank() == 0 && failures == 0) std::printf("mpi_keep_alive_check: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
