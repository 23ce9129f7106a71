// The MPI Transport and runtime. Sends are nonblocking (MPI_Isend, the
// buffer kept until MPI_Test says done, then kept as a spare); receives poll
// MPI_Improbe against a deadline (pushed back by keep-alives), so a silent
// peer becomes a timeout Status instead of a hang, and land in a spare
// buffer when one is big enough.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "ps/keep_alive.h"
#include "ps/mpi_runtime.h"
#include "ps/wire.h"

namespace ctrps::ps {
namespace {

std::string MpiError(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, len);
}

// How long Recv polls without yielding the core.
constexpr auto kSpin = std::chrono::microseconds(100);

class MpiTransport final : public Transport {
 public:
  MpiTransport() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_dup(MPI_COMM_WORLD, &comms_[0]);
    MPI_Comm_dup(MPI_COMM_WORLD, &comms_[1]);
  }
  ~MpiTransport() override {
    // Give queued sends a bounded time to finish, then free the comms.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Progress() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    MPI_Comm_free(&comms_[0]);
    MPI_Comm_free(&comms_[1]);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status Send(int dest, Channel channel, int tag, std::vector<char> payload) override {
    if (dest < 0 || dest >= size_)
      return Status::InvalidArgument("send to rank " + std::to_string(dest) + " of " +
                                     std::to_string(size_));
    if (payload.size() > static_cast<size_t>(INT32_MAX))
      return Status::InvalidArgument("message of " + std::to_string(payload.size()) +
                                     " bytes exceeds the 2 GiB MPI limit");
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace_back();
    Pending& p = pending_.back();
    p.bytes = std::move(payload);
    int rc = MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, dest, tag,
                       comms_[static_cast<int>(channel)], &p.request);
    if (rc != MPI_SUCCESS) {
      pending_.pop_back();
      return Status::Unavailable("MPI_Isend to rank " + std::to_string(dest) + ": " + MpiError(rc));
    }
    ProgressLocked();
    return Status::OK();
  }

  StatusOr<Message> Recv(Channel channel, int source, int tag, int64_t timeout_ms,
                         const std::vector<int>* awaited = nullptr) override {
    const auto start = std::chrono::steady_clock::now();
    WaitTimer timer(rank_, source, awaited, timeout_ms, start);
    MPI_Comm comm = comms_[static_cast<int>(channel)];
    for (int attempt = 0;; ++attempt) {
      int flag = 0;
      MPI_Message handle;
      MPI_Status st;
      int rc = MPI_Improbe(source == kAnySource ? MPI_ANY_SOURCE : source,
                           tag == kAnyTag ? MPI_ANY_TAG : tag, comm, &flag, &handle, &st);
      if (rc != MPI_SUCCESS) return Status::Unavailable("MPI_Improbe: " + MpiError(rc));
      if (flag && st.MPI_TAG == kTagKeepAlive) {  // matched by kAnyTag: not a message
        ASSIGN_OR_RETURN(std::vector<char> ka, ReceiveKeepAlive(&handle, st));
        timer.OnKeepAlive(st.MPI_SOURCE, ka.data(), ka.size(), std::chrono::steady_clock::now());
        continue;
      }
      if (flag) {
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        Message m;
        m.source = st.MPI_SOURCE;
        m.tag = st.MPI_TAG;
        m.payload = TakeBuffer(static_cast<size_t>(count));
        m.payload.resize(count);  // a spare's stale bytes are overwritten, not zeroed
        rc = MPI_Mrecv(m.payload.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return Status::Unavailable("MPI_Mrecv: " + MpiError(rc));
        return m;
      }
      if (attempt % 64 == 0) Progress();
      // Poll: spin at first (a reply usually comes within microseconds, and
      // a yield with another runnable process costs a time slice), then
      // yield the core between polls (ranks may share cores), and sleep
      // between polls once idle for long. Past the spin, keep-alives that
      // arrived may restart the timeout, and this rank sends its own.
      auto now = std::chrono::steady_clock::now();
      const auto idle = now - start;
      if (idle > kSpin) {
        RETURN_IF_ERROR(DrainKeepAlives(comm, &timer));
        char kind;
        uint32_t age_ms;
        if (timer.KeepAliveDue(now, &kind, &age_ms))
          RETURN_IF_ERROR(SendKeepAlives(this, kind, age_ms));
      }
      if (timer.Expired(now)) return timer.TimeoutStatus(now);
      if (idle > std::chrono::milliseconds(50)) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      } else if (idle > kSpin) {
        std::this_thread::yield();
      }
    }
  }

  void Recycle(std::vector<char> payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    spares_.Put(std::move(payload));
  }

  std::vector<char> TakeBuffer(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<char> buf = spares_.Get(bytes);
    if (buf.capacity() < bytes && !pending_.empty()) {  // a finished send may free one
      ProgressLocked();
      buf = spares_.Get(bytes);
    }
    return buf;
  }

 private:
  struct Pending {
    std::vector<char> bytes;
    MPI_Request request;
  };
  // Receives the probed keep-alive; its payload (a few bytes).
  static StatusOr<std::vector<char>> ReceiveKeepAlive(MPI_Message* handle, const MPI_Status& st) {
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    std::vector<char> payload(static_cast<size_t>(std::max(count, 0)));
    int rc = MPI_Mrecv(payload.data(), count, MPI_BYTE, handle, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return Status::Unavailable("MPI_Mrecv of a keep-alive: " + MpiError(rc));
    return payload;
  }
  // Receives every keep-alive waiting in `comm`, each told to the timer.
  static Status DrainKeepAlives(MPI_Comm comm, WaitTimer* timer) {
    for (;;) {
      int flag = 0;
      MPI_Message handle;
      MPI_Status st;
      int rc = MPI_Improbe(MPI_ANY_SOURCE, kTagKeepAlive, comm, &flag, &handle, &st);
      if (rc != MPI_SUCCESS) return Status::Unavailable("MPI_Improbe: " + MpiError(rc));
      if (!flag) return Status::OK();
      ASSIGN_OR_RETURN(std::vector<char> ka, ReceiveKeepAlive(&handle, st));
      timer->OnKeepAlive(st.MPI_SOURCE, ka.data(), ka.size(), std::chrono::steady_clock::now());
    }
  }
  size_t Progress() {
    std::lock_guard<std::mutex> lock(mu_);
    return ProgressLocked();
  }
  size_t ProgressLocked() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      if (!done) {
        ++it;
        continue;
      }
      spares_.Put(std::move(it->bytes));
      it = pending_.erase(it);
    }
    return pending_.size();
  }

  int rank_ = 0, size_ = 1;
  MPI_Comm comms_[2];
  std::mutex mu_;
  std::list<Pending> pending_;
  BufferPool spares_{6};  // sent payloads and recycled ones, for receives and senders
};

}  // namespace

StatusOr<std::unique_ptr<MpiRuntime>> MpiRuntime::Init(int* argc, char*** argv) {
  int provided = 0;
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  if (rc != MPI_SUCCESS) return Status::Unavailable("MPI_Init_thread failed: " + MpiError(rc));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::unique_ptr<MpiRuntime> r(new MpiRuntime());
  r->thread_multiple_ = provided >= MPI_THREAD_MULTIPLE;
  MPI_Comm_rank(MPI_COMM_WORLD, &r->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &r->size_);
  r->transport_ = std::make_unique<MpiTransport>();
  return r;
}

std::vector<std::string> MpiRuntime::HostNames() const {
  char mine[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(mine, &len);
  std::vector<char> all(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME, 0);
  MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                MPI_COMM_WORLD);
  std::vector<std::string> names(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    const char* p = all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
    names[static_cast<size_t>(r)].assign(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
  }
  return names;
}

MpiRuntime::~MpiRuntime() {
  transport_.reset();
  MPI_Finalize();
}

void MpiRuntime::Abort(const std::string& message, int exit_code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

bool LaunchedUnderMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* v = std::getenv(var);
    if (v && std::atoi(v) > 1) return true;
  }
  return false;
}

}  // namespace ctrps::ps
