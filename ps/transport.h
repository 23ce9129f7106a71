// Transport: tagged point-to-point messages between the ranks of a job.
// Two implementations: MPI (ps/mpi_runtime.h) and in-process threads with
// queues (NewInProcessNetwork below), so a whole cluster runs as threads in
// one test. Nothing else in ctrps sends bytes between ranks.
//
// Each rank has two inboxes (channels): one read by its server role and one
// by its worker role, so a colocated rank can run both on two threads.
// Messages from one sender on one channel and tag arrive in send order.
//
// Thread safety: Send and Recv may be called from several threads of the
// same rank, as long as no two threads Recv on the same channel and tag.
// Recycle and TakeBuffer may be called from any thread.
//
// Buffer reuse: large payloads are expensive to allocate (zero-fill, and
// page faults on every fresh mapping), so a transport keeps a few spare
// buffers. It adds sent payloads once the bytes are gone, and callers add
// received payloads they are done with (Recycle); Recv and TakeBuffer reuse
// their memory. Only allocation depends on this, never a message's bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ctrps::ps {

enum class Channel : int { kServer = 0, kWorker = 1 };

inline constexpr int kAnySource = -1;
inline constexpr int kAnyTag = -1;

// Tags (on the wire for MPI: never renumber).
inline constexpr int kTagRequest = 1;     // worker -> server: every request kind
inline constexpr int kTagPullReply = 2;   // server -> worker
inline constexpr int kTagPushAck = 3;     // server -> worker
inline constexpr int kTagControl = 4;     // server -> worker: declare/scan/load replies
inline constexpr int kTagCollective = 5;  // worker <-> worker
// any -> any: "alive" (ps/keep_alive.h). Never returned by Recv: one that
// reaches a rank's inbox while that rank waits in Recv for its sender
// restarts the wait's timeout (see Recv).
inline constexpr int kTagKeepAlive = 6;
// A keep-alive's first payload byte (on the wire: never change): the sender
// is working on its own (a KeepAlive scope), or waiting for a rank that is
// (then 4 more bytes, little-endian: the ms since that busy rank was last
// heard of, 0 from the busy rank itself); or it is blocked in Recv,
// waiting for a peer. (An empty payload is busy.)
inline constexpr char kKeepAliveBusy = 'B';
inline constexpr char kKeepAliveWaiting = 'W';
// A wait kept going only by 'W' keep-alives (every rank waiting for another:
// a stuck job, not a silent rank) ends after this many timeouts.
inline constexpr int kWaitingKeepAliveTimeouts = 3;
// The start of the Unavailable message of such a wait.
inline constexpr char kStuckWaitMessage[] = "alive but itself waiting";

// A Recv timeout in words for an error that names the peer: `silent` ("the
// server is gone or silent"), or the transport's account of a peer that
// stayed alive waiting for someone else.
inline std::string RecvTimeoutReason(const Status& s, const std::string& silent) {
  return s.message().rfind(kStuckWaitMessage, 0) == 0 ? s.message() : silent;
}

struct Message {
  int source = -1;
  int tag = 0;
  std::vector<char> payload;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Queues `payload` for `dest`'s inbox `channel` and returns without
  // waiting for the receiver (the transport owns the bytes until sent).
  [[nodiscard]] virtual Status Send(int dest, Channel channel, int tag,
                                    std::vector<char> payload) = 0;
  // The oldest message in this rank's inbox `channel` from `source` (or
  // kAnySource) with `tag` (or kAnyTag). Waits at most timeout_ms (< 0:
  // forever) since the call or since the last keep-alive (kTagKeepAlive;
  // consumed, never returned) from the rank it waits for: `source`, or with
  // kAnySource any rank in `awaited` (null: any rank). A timeout is
  // Unavailable.
  //
  // Waiting is not silence: from a quarter of timeout_ms into a wait, Recv
  // itself sends keep-alives to every rank every quarter timeout ('W', or
  // 'B' while a busy rank's keep-alives carry its own wait), so the ranks
  // waiting for this one do not blame it when the rank that went silent is
  // further down the chain: only the ranks waiting for that one time out.
  // Restarts by 'W' keep-alives alone stop after kWaitingKeepAliveTimeouts
  // timeouts (an Unavailable starting with kStuckWaitMessage).
  [[nodiscard]] virtual StatusOr<Message> Recv(Channel channel, int source, int tag,
                                               int64_t timeout_ms,
                                               const std::vector<int>* awaited = nullptr) = 0;
  // Hands back a payload the caller no longer needs (typically a received
  // message's, after use) for a later Recv or TakeBuffer to reuse. Optional:
  // a payload simply dropped is freed. The default drops it.
  virtual void Recycle(std::vector<char> payload) { (void)payload; }
  // A spare buffer with capacity >= `bytes` (size and contents unspecified:
  // resize it, and write every byte that is sent), or an empty vector when
  // none fits. Small sizes always get an empty vector. The default has none.
  [[nodiscard]] virtual std::vector<char> TakeBuffer(size_t bytes) {
    (void)bytes;
    return {};
  }
};

// An in-process network of `size` ranks; Endpoint(r) is rank r's transport
// (owned by the network, valid while it lives). For tests: a whole cluster
// as threads.
class InProcessNetwork {
 public:
  virtual ~InProcessNetwork() = default;
  virtual Transport* Endpoint(int rank) = 0;
  // From now on, messages sent to or by `rank` vanish (a silent peer).
  virtual void Silence(int rank) = 0;
};
std::unique_ptr<InProcessNetwork> NewInProcessNetwork(int size);

}  // namespace ctrps::ps
