#include "ps/worker_group.h"

#include <algorithm>
#include <cstring>

namespace ctrps::ps {

WorkerGroup::WorkerGroup(Transport* transport, std::vector<int> worker_ranks,
                         int64_t peer_timeout_ms)
    : t_(transport), ranks_(std::move(worker_ranks)), timeout_ms_(peer_timeout_ms) {
  auto it = std::find(ranks_.begin(), ranks_.end(), t_->rank());
  CHECK(it != ranks_.end()) << "rank " << t_->rank() << " is not a worker";
  index_ = static_cast<int>(it - ranks_.begin());
}

StatusOr<Message> WorkerGroup::RecvFrom(int index, const std::string& what) {
  auto m = t_->Recv(Channel::kWorker, ranks_[index], kTagCollective, timeout_ms_);
  if (!m.ok())
    return Status::Unavailable("worker " + std::to_string(index_) + " waited " +
                               std::to_string(timeout_ms_) + " ms for rank " +
                               std::to_string(ranks_[index]) + " (worker " +
                               std::to_string(index) + ") in " + what + ": " +
                               RecvTimeoutReason(m.status(), "the worker is gone or silent"));
  return m;
}

StatusOr<std::vector<std::vector<char>>> WorkerGroup::Gather(std::vector<char> mine,
                                                             const std::string& what) {
  std::vector<std::vector<char>> all;
  if (index_ != 0) {
    RETURN_IF_ERROR(t_->Send(ranks_[0], Channel::kWorker, kTagCollective, std::move(mine)));
    return all;
  }
  all.push_back(std::move(mine));
  for (int i = 1; i < size(); ++i) {
    ASSIGN_OR_RETURN(Message m, RecvFrom(i, what));
    all.push_back(std::move(m.payload));
  }
  return all;
}

Status WorkerGroup::Broadcast(std::vector<char>* bytes, const std::string& what) {
  if (index_ == 0) {
    for (int i = 1; i < size(); ++i)
      RETURN_IF_ERROR(t_->Send(ranks_[i], Channel::kWorker, kTagCollective, *bytes));
    return Status::OK();
  }
  ASSIGN_OR_RETURN(Message m, RecvFrom(0, what));
  *bytes = std::move(m.payload);
  return Status::OK();
}

// A pipelined chain: the chunks' partial sums travel 0 -> 1 -> ... -> W-1,
// each worker adding its own values, so every element is summed in worker
// order (((d0 + d1) + d2) + ...) exactly as a sum on one worker would be;
// worker W-1 scales, and the results travel W-1 -> 0 -> 1 -> ... -> W-2.
// Every link carries the vector once each way and every worker adds it
// once, whatever the number of workers. Messages between two workers keep
// their order (Transport), so one worker's reduce and broadcast chunks
// never mix.
Status WorkerGroup::AllreduceMean(float* data, size_t n, const std::string& what) {
  const int w = size();
  if (w == 1 || n == 0) return Status::OK();
  const size_t chunks = (n + chunk_floats_ - 1) / chunk_floats_;
  auto send = [&](int to, size_t c) {
    const size_t b = c * chunk_floats_, e = std::min(n, b + chunk_floats_);
    std::vector<char> bytes(reinterpret_cast<const char*>(data + b),
                            reinterpret_cast<const char*>(data + e));
    return t_->Send(ranks_[to], Channel::kWorker, kTagCollective, std::move(bytes));
  };
  auto recv = [&](int from, size_t c) -> StatusOr<Message> {
    ASSIGN_OR_RETURN(Message m, RecvFrom(from, what));
    const size_t b = c * chunk_floats_, e = std::min(n, b + chunk_floats_);
    if (m.payload.size() != (e - b) * sizeof(float))
      return Status::Corruption("worker " + std::to_string(from) + " sent " +
                                std::to_string(m.payload.size()) + " bytes for part " +
                                std::to_string(c) + " of " + what + ", expected " +
                                std::to_string((e - b) * sizeof(float)));
    return m;
  };
  const float scale = 1.0f / static_cast<float>(w);
  for (size_t c = 0; c < chunks; ++c) {  // reduce
    if (index_ > 0) {
      ASSIGN_OR_RETURN(Message m, recv(index_ - 1, c));
      const float* g = reinterpret_cast<const float*>(m.payload.data());
      float* d = data + c * chunk_floats_;
      const size_t len = m.payload.size() / sizeof(float);
      if (index_ == w - 1) {
        for (size_t k = 0; k < len; ++k) d[k] = (g[k] + d[k]) * scale;
      } else {
        for (size_t k = 0; k < len; ++k) d[k] = g[k] + d[k];
      }
    }
    RETURN_IF_ERROR(send(index_ == w - 1 ? 0 : index_ + 1, c));
  }
  if (index_ == w - 1) return Status::OK();
  for (size_t c = 0; c < chunks; ++c) {  // broadcast
    ASSIGN_OR_RETURN(Message m, recv(index_ == 0 ? w - 1 : index_ - 1, c));
    std::memcpy(data + c * chunk_floats_, m.payload.data(), m.payload.size());
    if (index_ + 1 < w - 1) RETURN_IF_ERROR(send(index_ + 1, c));
  }
  return Status::OK();
}

StatusOr<bool> WorkerGroup::AllTrue(bool mine, const std::string& what) {
  if (size() == 1) return mine;
  ASSIGN_OR_RETURN(auto all, Gather(std::vector<char>{static_cast<char>(mine)}, what));
  std::vector<char> result(1, 1);
  if (index_ == 0)
    for (const auto& a : all) result[0] &= (a.size() == 1 && a[0]);
  RETURN_IF_ERROR(Broadcast(&result, what));
  if (result.size() != 1) return Status::Corruption(what + ": malformed reply from worker 0");
  return result[0] != 0;
}

StatusOr<bool> WorkerGroup::AnyTrue(bool mine, const std::string& what) {
  ASSIGN_OR_RETURN(bool none, AllTrue(!mine, what));
  return !none;
}

std::unique_ptr<KeepAlive> WorkerGroup::StayAlive() const {
  return std::make_unique<KeepAlive>(t_, KeepAlive::IntervalFor(timeout_ms_));
}

}  // namespace ctrps::ps
