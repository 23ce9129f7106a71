// The training input of one worker: its partition of the input files,
// parsed into batches on a background thread, over epochs, optionally
// shuffled, resumable from a saved position.
//
//   DataReaderOptions options;
//   options.input = "/data/criteo/day_*.gz";
//   options.partition = {.reader_index = rank, .num_readers = workers};
//   options.batching.batch_size_rows = 4096;
//   ASSIGN_OR_RETURN(auto reader, DataReader::Open(options));
//   Batch batch;
//   while (true) {
//     ASSIGN_OR_RETURN(bool more, reader->Next(&batch));
//     if (!more) break;
//     ... train on batch ...
//   }
//   LOG reader->stats().ToString();
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "worker/data/batch.h"
#include "worker/data/batch_stream.h"
#include "worker/data/line_parser.h"
#include "worker/data/line_reader.h"
#include "worker/data/partition.h"
#include "worker/data/read_stats.h"
#include "worker/data/row_reader.h"

namespace ctrps::worker {

struct DataReaderOptions {
  // A path, a comma-separated list of paths, or glob patterns; plain and
  // gzip files may be mixed (see input_files.h).
  std::string input;
  ParserOptions parser;          // format and hashing
  PartitionOptions partition;    // which share of the input this reader reads
  LineReaderOptions line;        // read buffer and longest accepted line
  MalformedOptions malformed;    // lenient or strict, and how much to log
  BatchOptions batching;         // batch size, epochs, shuffle
  // Batches parsed ahead of the trainer (the queue bound). Memory:
  // prefetch_batches * batch_size_rows * num_fields * 12 bytes.
  int prefetch_batches = 4;
  // See PartitionReaderOptions::max_line_number_scan_bytes.
  uint64_t max_line_number_scan_bytes = uint64_t{1} << 30;

  // Checks every field; InvalidArgument naming the bad one.
  Status Validate() const;
};

// Thread-compatible: one consumer thread calls Next/Seek/Position; stats()
// may be called from any thread.
class DataReader {
 public:
  // Resolves the input, plans this reader's partition and starts the
  // background thread. Errors: a bad option, no input files, or files that
  // cannot be examined. Nothing is parsed before the thread starts.
  static StatusOr<std::unique_ptr<DataReader>> Open(const DataReaderOptions& options);

  // Stops the background thread, mid-stream if need be, and waits for it.
  ~DataReader();
  DataReader(const DataReader&) = delete;
  DataReader& operator=(const DataReader&) = delete;

  // Replaces *batch with the next batch. Returns false when all epochs are
  // done (and on every later call). Errors surface in stream order: batches
  // parsed before a failure are returned first, then its Status (naming
  // file:line for bad input, the file for I/O errors), on this and every
  // later call until a successful Seek.
  [[nodiscard]] StatusOr<bool> Next(Batch* batch);

  // Position after the last batch Next returned (the start before any).
  DataReaderPosition Position() const { return position_; }
  // For a checkpoint of Position(): the encoded gzip restart point at or
  // before its window start ("" if none), for ReadPosition::gzip_restart.
  std::string RestartPointBefore(const ReadPosition& p) const {
    return stream_->RestartPointBefore(p);
  }
  // Drops prefetched batches and continues from `position` (from Position()
  // of a reader with the same options). Errors as BatchStream::Seek.
  [[nodiscard]] Status Seek(const DataReaderPosition& position);

  // What the background thread has read so far (it runs ahead of Next by
  // up to prefetch_batches batches). Re-read epochs count again.
  ReadStats stats() const;
  const DatasetSchema& schema() const { return schema_; }
  const std::vector<InputFile>& files() const { return files_; }

 private:
  struct Item {
    Batch batch;
    DataReaderPosition position;
  };

  DataReader(std::unique_ptr<BatchStream> stream, std::vector<InputFile> files, int prefetch_batches);
  void Start();
  void Stop();
  void Run();

  std::unique_ptr<BatchStream> stream_;  // used by the background thread only, while it runs
  std::vector<InputFile> files_;
  DatasetSchema schema_;
  const size_t prefetch_batches_;
  DataReaderPosition position_;  // consumer side

  mutable std::mutex mu_;
  std::condition_variable can_push_;  // queue has room, or stop
  std::condition_variable can_pop_;   // queue has an item, or the producer finished
  std::deque<Item> queue_;
  std::vector<Batch> spare_;          // returned buffers, reused by the producer
  bool finished_ = false;             // the producer is done: end of data or error_
  Status error_;
  ReadStats stats_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Everything needed before a stream can run: the files, parser and
// partition reader behind a BatchStream. Used by DataReader::Open and
// ReadAllBatches; exposed for tools that want a synchronous stream.
StatusOr<std::unique_ptr<BatchStream>> OpenBatchStream(const DataReaderOptions& options,
                                                       std::vector<InputFile>* files = nullptr);

// Reads this reader's partition once, in file order, into memory: for
// evaluation sets that fit in RAM. options.batching.num_epochs and
// shuffle_buffer_rows are ignored (one epoch, no shuffle), as is
// prefetch_batches; the last batch may be smaller. *stats, if given,
// receives the read statistics.
StatusOr<std::vector<Batch>> ReadAllBatches(const DataReaderOptions& options,
                                            ReadStats* stats = nullptr);

}  // namespace ctrps::worker
