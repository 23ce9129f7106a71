#include "worker/data/batch_stream.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/hash.h"

namespace ctrps::worker {
namespace {

constexpr int kWindowChunkRows = 8192;  // rows read between cancellation checks

// Fisher-Yates with splitmix64 draws: the same permutation on every
// platform and standard library for a given seed.
void Permute(uint64_t seed, std::vector<uint32_t>* order) {
  uint64_t state = seed;
  for (size_t i = order->size(); i > 1; --i) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t r = Mix64(state);
    size_t j = static_cast<size_t>((static_cast<unsigned __int128>(r) * i) >> 64);
    std::swap((*order)[i - 1], (*order)[j]);
  }
}

uint64_t WindowSeed(uint64_t seed, int64_t epoch, int64_t window) {
  return Mix64(seed ^ Mix64(static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ULL +
                            static_cast<uint64_t>(window)));
}

}  // namespace

Status BatchOptions::Validate() const {
  if (batch_size_rows < 1 || batch_size_rows > (1 << 24)) {
    return Status::InvalidArgument("batch_size_rows must be in [1, 16777216], got " + std::to_string(batch_size_rows));
  }
  if (num_epochs < 0) {
    return Status::InvalidArgument("num_epochs must be >= 0 (0 = repeat forever), got " + std::to_string(num_epochs));
  }
  if (shuffle_buffer_rows < 0 || shuffle_buffer_rows > (int64_t{1} << 28)) {
    return Status::InvalidArgument("shuffle_buffer_rows must be in [0, 268435456] (0 = no shuffle), got " +
                                   std::to_string(shuffle_buffer_rows));
  }
  return Status::OK();
}

std::string DataReaderPosition::ToString() const {
  return "epoch " + std::to_string(epoch) + ", window " + std::to_string(window_index) + " at (" +
         window_start.ToString() + ") + " + std::to_string(rows_into_window) + " rows, " +
         std::to_string(rows_returned) + " rows returned";
}

BatchStream::BatchStream(std::unique_ptr<RowReader> rows, const BatchOptions& options)
    : rows_(std::move(rows)), options_(options) {
  CHECK(options.Validate().ok()) << options.Validate().ToString();
  epoch_start_ = rows_->StartPosition();
  position_.window_start = rows_->Position();
  window_.num_fields = rows_->schema().num_fields();
}

StatusOr<bool> BatchStream::FillWindow() {
  window_.Clear();
  order_.clear();
  window_next_ = 0;
  position_.window_start = rows_->Position();
  position_.rows_into_window = 0;
  int64_t want = options_.shuffle_buffer_rows;
  while (want > 0) {
    if (Cancelled()) return Status::Unavailable("batch stream cancelled");
    int chunk = static_cast<int>(std::min<int64_t>(want, kWindowChunkRows));
    ASSIGN_OR_RETURN(int got, rows_->ReadRows(chunk, &window_));
    want -= got;
    if (got < chunk) break;
  }
  window_end_ = rows_->Position();
  if (window_.size() == 0) return false;
  order_.resize(window_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
  Permute(WindowSeed(options_.shuffle_seed, position_.epoch, position_.window_index), &order_);
  return true;
}

Status BatchStream::EndEpoch() {
  ++position_.epoch;
  epoch_from_start_ = true;
  batches_this_epoch_ = 0;
  position_.window_index = 0;
  position_.rows_into_window = 0;
  position_.window_start = epoch_start_;
  window_.Clear();
  order_.clear();
  window_next_ = 0;
  const bool more = options_.num_epochs == 0 || position_.epoch < options_.num_epochs;
  return more ? rows_->Seek(epoch_start_) : Status::OK();
}

StatusOr<bool> BatchStream::Next(Batch* batch) {
  const int num_fields = rows_->schema().num_fields();
  const int batch_rows = options_.batch_size_rows;
  batch->num_fields = num_fields;
  batch->Clear();
  batch->Reserve(batch_rows);
  while (true) {
    if (exhausted_ || (options_.num_epochs > 0 && position_.epoch >= options_.num_epochs)) return false;
    if (Cancelled()) return Status::Unavailable("batch stream cancelled");
    bool epoch_ended = false;
    const int need = batch_rows - batch->size();
    if (options_.shuffle_buffer_rows == 0) {
      ASSIGN_OR_RETURN(int got, rows_->ReadRows(need, batch));
      epoch_ended = got < need;
      position_.window_start = rows_->Position();
    } else {
      if (window_next_ == order_.size()) {
        ASSIGN_OR_RETURN(bool filled, FillWindow());
        epoch_ended = !filled;
      }
      if (!epoch_ended) {
        size_t take = std::min<size_t>(need, order_.size() - window_next_);
        for (size_t k = 0; k < take; ++k) {
          const size_t row = order_[window_next_++];
          batch->labels.push_back(window_.labels[row]);
          batch->keys.insert(batch->keys.end(), window_.keys.begin() + row * num_fields,
                             window_.keys.begin() + (row + 1) * num_fields);
          batch->values.insert(batch->values.end(), window_.values.begin() + row * num_fields,
                               window_.values.begin() + (row + 1) * num_fields);
        }
        position_.rows_into_window = static_cast<int64_t>(window_next_);
        if (window_next_ == order_.size()) {
          // Window done: the position is simply the start of the next one.
          position_.window_start = window_end_;
          ++position_.window_index;
          position_.rows_into_window = 0;
        }
      }
    }
    if (batch->size() == batch_rows) {
      position_.rows_returned += batch_rows;
      ++batches_this_epoch_;
      return true;
    }
    if (epoch_ended) {
      const bool partial = batch->size() > 0 && !options_.drop_last_partial_batch;
      // A whole epoch without a batch means every epoch is like it: stop
      // instead of spinning through empty epochs forever.
      const bool barren = epoch_from_start_ && batches_this_epoch_ == 0 && !partial;
      RETURN_IF_ERROR(EndEpoch());
      if (partial) {
        position_.rows_returned += batch->size();
        ++batches_this_epoch_;
        return true;
      }
      batch->Clear();
      if (barren) {
        spdlog::warn("a whole epoch of this reader's partition gave no batch ({} rows read{}); ending the stream",
                     stats().rows, options_.drop_last_partial_batch ? ", all in a dropped partial batch" : "");
        exhausted_ = true;
        return false;
      }
    }
  }
}

Status BatchStream::Seek(const DataReaderPosition& position) {
  window_.Clear();
  order_.clear();
  window_next_ = 0;
  if (options_.shuffle_buffer_rows == 0 && (position.rows_into_window != 0 || position.window_index != 0)) {
    return Status::InvalidArgument("cannot seek to " + position.ToString() +
                                   ": it was taken with a shuffle window, and this stream has none");
  }
  position_ = position;
  exhausted_ = false;
  batches_this_epoch_ = 0;
  epoch_from_start_ = position.window_start == epoch_start_ && position.window_index == 0 &&
                      position.rows_into_window == 0;
  RETURN_IF_ERROR(rows_->Seek(position.window_start));
  if (position.rows_into_window == 0) return Status::OK();
  ASSIGN_OR_RETURN(bool filled, FillWindow());
  if (!filled || position.rows_into_window > static_cast<int64_t>(order_.size())) {
    return Status::InvalidArgument("cannot seek to " + position.ToString() + ": its window now holds " +
                                   std::to_string(order_.size()) +
                                   " rows (were the files or shuffle_buffer_rows changed?)");
  }
  window_next_ = static_cast<size_t>(position.rows_into_window);
  position_.rows_into_window = position.rows_into_window;
  return Status::OK();
}

}  // namespace ctrps::worker
