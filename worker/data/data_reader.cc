#include "worker/data/data_reader.h"

#include <utility>

#include "worker/data/input_files.h"

namespace ctrps::worker {

Status DataReaderOptions::Validate() const {
  if (input.empty()) return Status::InvalidArgument("input is empty: expected a path, a comma-separated list, or a glob");
  RETURN_IF_ERROR_CTX(parser.Validate(), "parser");
  RETURN_IF_ERROR_CTX(partition.Validate(), "partition");
  RETURN_IF_ERROR_CTX(line.Validate(), "line");
  RETURN_IF_ERROR_CTX(malformed.Validate(), "malformed");
  RETURN_IF_ERROR_CTX(batching.Validate(), "batching");
  if (prefetch_batches < 1 || prefetch_batches > 1024) {
    return Status::InvalidArgument("prefetch_batches must be in [1, 1024], got " + std::to_string(prefetch_batches));
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<BatchStream>> OpenBatchStream(const DataReaderOptions& options,
                                                       std::vector<InputFile>* files_out) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::vector<InputFile> files, ResolveInputFiles(options.input));
  ASSIGN_OR_RETURN(std::unique_ptr<LineParser> parser, NewLineParser(options.parser));
  PartitionReaderOptions reading;
  reading.partition = options.partition;
  reading.line = options.line;
  reading.header_lines = parser->header_lines();
  reading.max_line_number_scan_bytes = options.max_line_number_scan_bytes;
  if (files_out != nullptr) *files_out = files;
  ASSIGN_OR_RETURN(std::unique_ptr<PartitionReader> lines, PartitionReader::Open(std::move(files), reading));
  auto rows = std::make_unique<RowReader>(std::move(lines), std::move(parser), options.malformed);
  return std::make_unique<BatchStream>(std::move(rows), options.batching);
}

StatusOr<std::vector<Batch>> ReadAllBatches(const DataReaderOptions& options, ReadStats* stats) {
  DataReaderOptions once = options;
  once.batching.num_epochs = 1;
  once.batching.shuffle_buffer_rows = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<BatchStream> stream, OpenBatchStream(once));
  std::vector<Batch> batches;
  while (true) {
    Batch batch;
    StatusOr<bool> more = stream->Next(&batch);
    if (stats != nullptr) *stats = stream->stats();
    if (!more.ok()) return more.status();
    if (!*more) break;
    batches.push_back(std::move(batch));
  }
  return batches;
}

StatusOr<std::unique_ptr<DataReader>> DataReader::Open(const DataReaderOptions& options) {
  std::vector<InputFile> files;
  ASSIGN_OR_RETURN(std::unique_ptr<BatchStream> stream, OpenBatchStream(options, &files));
  std::unique_ptr<DataReader> reader(new DataReader(std::move(stream), std::move(files), options.prefetch_batches));
  reader->Start();
  return reader;
}

DataReader::DataReader(std::unique_ptr<BatchStream> stream, std::vector<InputFile> files, int prefetch_batches)
    : stream_(std::move(stream)), files_(std::move(files)), schema_(stream_->schema()),
      prefetch_batches_(static_cast<size_t>(prefetch_batches)), position_(stream_->Position()) {
  stream_->set_cancel_flag(&stop_);
}

DataReader::~DataReader() { Stop(); }

void DataReader::Start() {
  CHECK(!thread_.joinable());
  stop_ = false;
  finished_ = false;
  error_ = Status::OK();
  thread_ = std::thread([this] { Run(); });
}

void DataReader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  can_push_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DataReader::Run() {
  while (true) {
    Batch batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!spare_.empty()) {
        batch = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    StatusOr<bool> more = stream_->Next(&batch);
    std::unique_lock<std::mutex> lock(mu_);
    stats_ = stream_->stats();
    if (stop_) return;
    if (!more.ok() || !*more) {
      if (!more.ok()) error_ = more.status();
      finished_ = true;
      can_pop_.notify_all();
      return;
    }
    can_push_.wait(lock, [this] { return stop_ || queue_.size() < prefetch_batches_; });
    if (stop_) return;
    queue_.push_back(Item{std::move(batch), stream_->Position()});
    can_pop_.notify_one();
  }
}

StatusOr<bool> DataReader::Next(Batch* batch) {
  std::unique_lock<std::mutex> lock(mu_);
  can_pop_.wait(lock, [this] { return !queue_.empty() || finished_; });
  if (queue_.empty()) {
    if (!error_.ok()) return error_;
    return false;
  }
  Item& item = queue_.front();
  std::swap(*batch, item.batch);
  position_ = item.position;
  // The caller's old buffers go back to the producer.
  if (spare_.size() < prefetch_batches_) spare_.push_back(std::move(item.batch));
  queue_.pop_front();
  can_push_.notify_one();
  return true;
}

Status DataReader::Seek(const DataReaderPosition& position) {
  Stop();
  queue_.clear();
  stop_ = false;  // the stream checks it while re-reading a shuffle window
  Status st = stream_->Seek(position);
  if (!st.ok()) {
    // Leave the reader failed: Next reports the same error.
    std::lock_guard<std::mutex> lock(mu_);
    error_ = st;
    finished_ = true;
    return st;
  }
  position_ = position;
  Start();
  return Status::OK();
}

ReadStats DataReader::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace ctrps::worker
