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
                               std::to_string(index) + ") in " + what +
                               ": the worker is gone or silent");
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

Status WorkerGroup::AllreduceMean(float* data, size_t n, const std::string& what) {
  if (size() == 1) return Status::OK();
  const size_t bytes = n * sizeof(float);
  std::vector<char> mine(reinterpret_cast<const char*>(data),
                         reinterpret_cast<const char*>(data) + bytes);
  ASSIGN_OR_RETURN(auto all, Gather(std::move(mine), what));
  std::vector<char> result;
  if (index_ == 0) {
    for (int i = 1; i < size(); ++i) {
      if (all[i].size() != bytes)
        return Status::Corruption("worker " + std::to_string(i) + " sent " +
                                  std::to_string(all[i].size()) + " bytes to " + what +
                                  ", expected " + std::to_string(bytes));
      const float* g = reinterpret_cast<const float*>(all[i].data());
      for (size_t k = 0; k < n; ++k) data[k] += g[k];
    }
    const float scale = 1.0f / static_cast<float>(size());
    for (size_t k = 0; k < n; ++k) data[k] *= scale;
    result.assign(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + bytes);
  }
  RETURN_IF_ERROR(Broadcast(&result, what));
  if (index_ != 0) {
    if (result.size() != bytes)
      return Status::Corruption(what + ": worker 0 sent " + std::to_string(result.size()) +
                                " bytes, expected " + std::to_string(bytes));
    std::memcpy(data, result.data(), bytes);
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

}  // namespace ctrps::ps
