// Examples -> batches, over epochs, with an optional seeded shuffle window,
// and a position that resumes exactly (the checkpoint of a worker's input).
// Synchronous; DataReader runs one on a background thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/data/row_reader.h"

namespace ctrps::worker {

struct BatchOptions {
  int batch_size_rows = 1024;  // examples per batch
  // Passes over this reader's partition; 0 repeats until the reader is
  // destroyed. Batches never span two epochs.
  int num_epochs = 1;
  // Drop each epoch's last batch when it has fewer than batch_size_rows
  // examples (those rows are then not trained on in that epoch).
  bool drop_last_partial_batch = false;
  // 0: examples come in file order. N > 0: the partition is read N examples
  // at a time and each window of N is returned in a random order, drawn
  // from (shuffle_seed, epoch, window index), so a given seed always gives
  // the same order, and each epoch a different one. Windows (rather than a
  // sliding reservoir) make resume exact at the cost of re-reading at most
  // one window. Memory: N * num_fields * 12 bytes.
  int64_t shuffle_buffer_rows = 0;
  uint64_t shuffle_seed = 0;

  // InvalidArgument unless 1 <= batch_size_rows <= 1<<24, num_epochs >= 0,
  // 0 <= shuffle_buffer_rows <= 1<<28.
  Status Validate() const;
};

// Where a batch stream is, after the last batch it returned. Save all
// fields; restore with Seek on a stream over the same files with the same
// partition, parser and batch options.
struct DataReaderPosition {
  int64_t epoch = 0;
  // Without shuffle: the next line. With shuffle: where the current window
  // starts (the window is re-read and re-permuted on Seek).
  ReadPosition window_start;
  int64_t window_index = 0;   // windows started in this epoch (seeds the permutation)
  int64_t rows_into_window = 0;  // examples of that window already returned
  int64_t rows_returned = 0;  // examples returned over all epochs (informational)

  bool operator==(const DataReaderPosition& o) const {
    return epoch == o.epoch && window_start == o.window_start && window_index == o.window_index &&
           rows_into_window == o.rows_into_window && rows_returned == o.rows_returned;
  }
  std::string ToString() const;
};

// Not thread-safe.
class BatchStream {
 public:
  BatchStream(std::unique_ptr<RowReader> rows, const BatchOptions& options);

  // Replaces *batch with the next batch (reusing its buffers). Returns false
  // once all epochs are done, or after a whole epoch that yields no batch
  // (an empty partition, or one smaller than a batch with
  // drop_last_partial_batch), since every later epoch would be the same. Errors: from reading and parsing; after one
  // the stream should not be used further (except Seek).
  [[nodiscard]] StatusOr<bool> Next(Batch* batch);

  const DataReaderPosition& Position() const { return position_; }
  [[nodiscard]] Status Seek(const DataReaderPosition& position);

  const ReadStats& stats() const { return rows_->stats(); }
  const DatasetSchema& schema() const { return rows_->schema(); }
  // See PartitionReader::RestartPointBefore (thread-safe).
  std::string RestartPointBefore(const ReadPosition& p) const {
    return rows_->partition_reader()->RestartPointBefore(p);
  }

  // Optional: when *cancel becomes true, a Next in progress gives up early
  // with an Unavailable status (used by DataReader's destructor).
  void set_cancel_flag(const std::atomic<bool>* cancel) { cancel_ = cancel; }

 private:
  bool Cancelled() const { return cancel_ != nullptr && cancel_->load(std::memory_order_relaxed); }
  // Reads and permutes the next window; false if the epoch has no rows left.
  StatusOr<bool> FillWindow();
  Status EndEpoch();

  std::unique_ptr<RowReader> rows_;
  BatchOptions options_;
  ReadPosition epoch_start_;
  DataReaderPosition position_;
  const std::atomic<bool>* cancel_ = nullptr;
  // The shuffle window: rows in read order, and the order to return them in.
  Batch window_;
  std::vector<uint32_t> order_;
  size_t window_next_ = 0;
  ReadPosition window_end_;  // position after the window's last line
  // For ending the stream on an epoch without batches.
  bool epoch_from_start_ = true;  // the current epoch was read from its start
  int64_t batches_this_epoch_ = 0;
  bool exhausted_ = false;
};

}  // namespace ctrps::worker
