// The in-process Transport: one locked queue per (rank, channel). Payloads
// move from sender to receiver; recycled ones are kept per rank as spares,
// so tests see reused buffers with stale contents, as under MPI.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "ps/keep_alive.h"
#include "ps/transport.h"
#include "ps/wire.h"

namespace ctrps::ps {
namespace {

struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Message> queue;
};

class Network;

class RankEndpoint final : public Transport {
 public:
  RankEndpoint(Network* net, int rank) : net_(net), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override;
  Status Send(int dest, Channel channel, int tag, std::vector<char> payload) override;
  StatusOr<Message> Recv(Channel channel, int source, int tag, int64_t timeout_ms,
                         const std::vector<int>* awaited = nullptr) override;
  void Recycle(std::vector<char> payload) override {
    std::lock_guard<std::mutex> lock(spares_mu_);
    spares_.Put(std::move(payload));
  }
  std::vector<char> TakeBuffer(size_t bytes) override {
    std::lock_guard<std::mutex> lock(spares_mu_);
    return spares_.Get(bytes);
  }

 private:
  Network* net_;
  int rank_;
  std::mutex spares_mu_;
  BufferPool spares_;
};

class Network final : public InProcessNetwork {
 public:
  explicit Network(int size) : inboxes_(size * 2), silenced_(size) {
    for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<RankEndpoint>(this, r));
    for (auto& s : silenced_) s = false;
  }
  Transport* Endpoint(int rank) override { return endpoints_.at(rank).get(); }
  void Silence(int rank) override { silenced_.at(rank) = true; }

  int size() const { return static_cast<int>(endpoints_.size()); }
  Inbox& inbox(int rank, Channel c) { return inboxes_[rank * 2 + static_cast<int>(c)]; }
  bool silenced(int rank) const { return silenced_[rank]; }

 private:
  std::vector<std::unique_ptr<RankEndpoint>> endpoints_;
  std::vector<Inbox> inboxes_;
  std::vector<std::atomic<bool>> silenced_;
};

int RankEndpoint::size() const { return net_->size(); }

Status RankEndpoint::Send(int dest, Channel channel, int tag, std::vector<char> payload) {
  if (dest < 0 || dest >= net_->size())
    return Status::InvalidArgument("send to rank " + std::to_string(dest) + " of " +
                                   std::to_string(net_->size()));
  if (net_->silenced(rank_) || net_->silenced(dest)) return Status::OK();
  Inbox& box = net_->inbox(dest, channel);
  {
    std::lock_guard<std::mutex> lock(box.mu);
    box.queue.push_back(Message{rank_, tag, std::move(payload)});
  }
  box.cv.notify_all();
  return Status::OK();
}

StatusOr<Message> RankEndpoint::Recv(Channel channel, int source, int tag, int64_t timeout_ms,
                                     const std::vector<int>* awaited) {
  Inbox& box = net_->inbox(rank_, channel);
  WaitTimer timer(rank_, source, awaited, timeout_ms);
  auto matches = [&](const Message& m) {
    return (source == kAnySource || m.source == source) && (tag == kAnyTag || m.tag == tag);
  };
  std::unique_lock<std::mutex> lock(box.mu);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = box.queue.begin(); it != box.queue.end();) {
      if (it->tag == kTagKeepAlive) {  // consumed; may restart the timeout
        timer.OnKeepAlive(it->source, it->payload.data(), it->payload.size(), now);
        it = box.queue.erase(it);
      } else if (matches(*it)) {
        Message m = std::move(*it);
        box.queue.erase(it);
        return m;
      } else {
        ++it;
      }
    }
    char kind;
    uint32_t age_ms;
    if (timer.KeepAliveDue(now, &kind, &age_ms)) {
      // Waiting is not silence (ps/transport.h). Sent unlocked: one goes to
      // this very inbox.
      lock.unlock();
      Status s = SendKeepAlives(this, kind, age_ms);
      lock.lock();
      RETURN_IF_ERROR(s);
      continue;
    }
    if (timer.Expired(now)) return timer.TimeoutStatus(now);
    if (timeout_ms < 0) {
      box.cv.wait(lock);
    } else {
      box.cv.wait_until(lock, std::min(timer.deadline(), timer.next_keep_alive()));
    }
  }
}

}  // namespace

std::unique_ptr<InProcessNetwork> NewInProcessNetwork(int size) {
  return std::make_unique<Network>(size);
}

}  // namespace ctrps::ps
