// The data side of a job: the schema of the configured format, and batch
// sources over the worker's data readers.
#include <algorithm>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "launch/cluster.h"
#include "launch/job_setup.h"
#include "worker/data/data_reader.h"
#include "worker/data/line_parser.h"

namespace ctrps::launch {

worker::ParserOptions MakeParserOptions(const config::DataConfig& d) {
  worker::ParserOptions p;
  switch (d.format()) {
    case config::DataConfig::CRITEO: p.format = worker::DataFormat::kCriteo; break;
    case config::DataConfig::AVAZU: p.format = worker::DataFormat::kAvazu; break;
    case config::DataConfig::LIBFFM: p.format = worker::DataFormat::kLibffm; break;
  }
  p.hash_seed = d.hash_seed();
  p.criteo_integer_encoding = d.integer_mode() == config::DataConfig::SCALE
                                  ? worker::IntegerEncoding::kScale
                                  : worker::IntegerEncoding::kLogBucket;
  p.libffm_num_fields = d.libffm_num_fields();
  return p;
}

StatusOr<worker::ParserOptions> MakeJobParserOptions(const LoadedConfig& c) {
  worker::ParserOptions p = MakeParserOptions(c.job.data());
  const auto& dropped = c.job.model().dropped_fields();
  if (dropped.empty()) return p;
  auto parser = worker::NewLineParser(p);
  if (!parser.ok()) return parser.status().WithContext(c.Where("data"));
  const worker::DatasetSchema& all = (*parser)->schema();
  std::vector<bool> gone(all.num_fields(), false);
  for (int i = 0; i < dropped.size(); ++i) {
    auto it = std::find(all.field_names.begin(), all.field_names.end(), dropped[i]);
    if (it == all.field_names.end())
      return Status::InvalidArgument(c.Where("model.dropped_fields[" + std::to_string(i) + "]") +
                                     ": the data has no field '" + dropped[i] + "'");
    gone[it - all.field_names.begin()] = true;
  }
  for (int f = 0; f < all.num_fields(); ++f)
    if (!gone[f]) p.keep_fields.push_back(f);
  if (p.keep_fields.empty())
    return Status::InvalidArgument(c.Where("model.dropped_fields") + ": every field is dropped");
  return p;
}

namespace {

// A BatchSource over a DataReader. Each pass (Rewind) reopens the reader
// with the pass number mixed into the shuffle seed, so every epoch has its
// own, reproducible order. Malformed-line counts add up over passes.
class ReaderSource final : public worker::BatchSource {
  static constexpr char kRestartTag[] = "gzip-restart ";

 public:
  explicit ReaderSource(worker::DataReaderOptions options) : options_(std::move(options)) {}

  StatusOr<bool> Next(worker::Batch* batch) override {
    if (!reader_) RETURN_IF_ERROR(Rewind());
    served_ = true;
    return reader_->Next(batch);
  }

  // A reader nobody has read from (the one opened up front to check the
  // inputs) is already at the start of its pass: it is kept, so its
  // read-ahead is not done (and its bad lines not logged) twice.
  Status Rewind() override {
    if (reader_ && !served_) return Status::OK();
    return Reopen();
  }

 private:
  // Opens the next pass (its shuffle seed follows the pass number).
  Status Reopen() {
    // A pass nobody read from counts nothing, though its parser thread may
    // have read ahead.
    if (reader_ && served_) total_.Add(reader_->stats());
    reader_.reset();
    served_ = false;
    worker::DataReaderOptions o = options_;
    o.batching.shuffle_seed = options_.batching.shuffle_seed + 0x9e3779b9ULL * passes_++;
    ASSIGN_OR_RETURN(reader_, worker::DataReader::Open(o));
    return Status::OK();
  }

 public:
  std::string SkippedSummary() const override {
    worker::ReadStats s = Totals();
    return s.malformed_lines() == 0 ? "" : s.ToString();
  }

  std::string ReadSummary() const override { return Totals().ToString(); }
  std::vector<std::pair<std::string, int64_t>> ReadCounters() const override {
    const worker::ReadStats s = Totals();
    std::vector<std::pair<std::string, int64_t>> out = {
        {"lines_read", s.lines}, {"rows_read", s.rows}, {"lines_skipped", s.malformed_lines()}};
    for (int r = 0; r < worker::kNumMalformedReasons; ++r) {
      if (s.malformed[r] == 0) continue;
      std::string name = worker::MalformedReasonName(static_cast<worker::MalformedReason>(r));
      for (char& c : name) c = c == ' ' ? '_' : c;
      out.emplace_back("skipped_" + name, s.malformed[r]);
    }
    return out;
  }

  // "ctrps-reader 2 <pass> <epoch> <file> <byte> <line in file> <lines>
  // <window> <rows into window> <rows returned>", then in a gzip file
  // optionally "gzip-restart <n>" and n bytes (a restart point at or before
  // the window start: the resume decompresses from there, not from the
  // file's start), then one line per input file "<size> <path>": the pass
  // fixes the shuffle seed, the rest is the DataReader's position, and the
  // file list detects changed data. Version 1 (no restart point) is read.
  StatusOr<std::string> SavePosition() const override {
    if (!reader_) return Status::FailedPrecondition("reader not open");
    const worker::DataReaderPosition p = reader_->Position();
    const std::string restart = reader_->RestartPointBefore(p.window_start);
    char buf[256];
    std::snprintf(buf, sizeof(buf), "ctrps-reader 2 %llu %lld %d %llu %llu %llu %lld %lld %lld\n",
                  static_cast<unsigned long long>(passes_), static_cast<long long>(p.epoch),
                  p.window_start.file_index,
                  static_cast<unsigned long long>(p.window_start.byte_offset),
                  static_cast<unsigned long long>(p.window_start.line_in_file),
                  static_cast<unsigned long long>(p.window_start.lines_consumed),
                  static_cast<long long>(p.window_index), static_cast<long long>(p.rows_into_window),
                  static_cast<long long>(p.rows_returned));
    std::string out = buf;
    if (!restart.empty())
      out += std::string(kRestartTag) + std::to_string(restart.size()) + "\n" + restart;
    return out + FileList();
  }

  Status RestorePosition(const std::string& text) override {
    unsigned long long passes = 0, byte = 0, line = 0, lines = 0;
    long long epoch = 0, window = 0, into = 0, returned = 0;
    int file = 0, version = 0;
    const size_t nl = text.find('\n');
    if (std::sscanf(text.substr(0, nl).c_str(), "ctrps-reader %d %llu %lld %d %llu %llu %llu %lld %lld %lld",
                    &version, &passes, &epoch, &file, &byte, &line, &lines, &window, &into,
                    &returned) != 10 ||
        (version != 1 && version != 2) || passes < 1 || nl == std::string::npos)
      return Status::Corruption("bad reader position '" + text.substr(0, nl) + "'");
    std::string saved_files = text.substr(nl + 1), restart;
    if (version == 2 && saved_files.rfind(kRestartTag, 0) == 0) {
      const size_t tag = sizeof(kRestartTag) - 1, end = saved_files.find('\n');
      unsigned long long n = 0;
      // The size is checked against the bytes there before any is taken.
      if (end == std::string::npos ||
          std::sscanf(saved_files.substr(tag, end - tag).c_str(), "%llu", &n) != 1 ||
          n > saved_files.size() - end - 1)
        return Status::Corruption("bad gzip restart point in the reader position");
      restart = saved_files.substr(end + 1, n);
      saved_files = saved_files.substr(end + 1 + n);
    }
    if (!reader_) RETURN_IF_ERROR(Rewind());
    if (saved_files != FileList())
      return Status::FailedPrecondition(
          "the training data changed since the checkpoint (files and sizes then:\n" + saved_files +
          "now:\n" + FileList() + "): a resume would not continue where training stopped");
    worker::DataReaderPosition p;
    p.epoch = epoch;
    p.window_start.file_index = file;
    p.window_start.byte_offset = byte;
    p.window_start.line_in_file = line;
    p.window_start.lines_consumed = lines;
    p.window_start.gzip_restart = restart;
    p.window_index = window;
    p.rows_into_window = into;
    p.rows_returned = returned;
    passes_ = passes - 1;
    RETURN_IF_ERROR(Reopen());  // opens pass `passes` (its shuffle seed)
    return reader_->Seek(p);
  }

  // Rows handed out in this pass times the mean line size so far, over the
  // input's size (plain files only: a gzip file's uncompressed size is
  // unknown up front).
  double PassFraction() const override {
    if (!reader_) return -1;
    const worker::ReadStats st = reader_->stats();
    if (st.lines == 0) return -1;
    uint64_t total = 0;
    for (const auto& f : reader_->files()) {
      if (f.gzip) return -1;
      total += f.size_bytes;
    }
    if (total == 0) return -1;
    const double per_reader = static_cast<double>(total) / options_.partition.num_readers;
    const double line_bytes = static_cast<double>(st.bytes) / st.lines;
    return std::min(1.0, reader_->Position().rows_returned * line_bytes / per_reader);
  }

 private:
  std::string FileList() const {
    std::string out;
    for (const auto& f : reader_->files()) out += std::to_string(f.size_bytes) + " " + f.path + "\n";
    return out;
  }

  worker::ReadStats Totals() const {
    worker::ReadStats s = total_;
    if (reader_ && served_) s.Add(reader_->stats());
    return s;
  }

  worker::DataReaderOptions options_;
  std::unique_ptr<worker::DataReader> reader_;
  worker::ReadStats total_;
  uint64_t passes_ = 0;
  bool served_ = false;  // Next was called on reader_
};

}  // namespace

StatusOr<worker::DatasetSchema> SchemaFor(const LoadedConfig& c) {
  ASSIGN_OR_RETURN(worker::ParserOptions p, MakeJobParserOptions(c));
  auto parser = worker::NewLineParser(p);
  if (!parser.ok()) return parser.status().WithContext(c.Where("data"));
  return (*parser)->schema();
}

StatusOr<std::unique_ptr<worker::BatchSource>> OpenBatchSource(const LoadedConfig& c,
                                                               const std::string& path,
                                                               bool training) {
  return OpenPartitionedBatchSource(c, path, training, 0, 1);
}

StatusOr<std::unique_ptr<worker::BatchSource>> OpenPartitionedBatchSource(
    const LoadedConfig& c, const std::string& path, bool training, int reader_index,
    int num_readers) {
  const config::DataConfig& d = c.job.data();
  worker::DataReaderOptions o;
  o.input = path;
  o.partition.reader_index = reader_index;
  o.partition.num_readers = num_readers;
  ASSIGN_OR_RETURN(o.parser, MakeJobParserOptions(c));
  o.line.max_line_bytes = d.max_line_bytes();
  o.malformed.strict = d.strict();
  o.malformed.max_logged_lines = d.log_bad_lines();
  o.batching.batch_size_rows = training ? c.job.train().batch_size() : 8192;
  o.batching.num_epochs = 1;  // one pass per Rewind
  o.batching.shuffle_buffer_rows = training ? d.shuffle_buffer() : 0;
  o.batching.shuffle_seed = c.job.train().seed();
  o.prefetch_batches = d.prefetch_batches();
  Status s = o.Validate();
  if (!s.ok()) return s.WithContext("data options");
  auto source = std::make_unique<ReaderSource>(o);
  // Open now so a missing file or bad glob fails before training starts.
  RETURN_IF_ERROR_CTX(source->Rewind(), path);
  return std::unique_ptr<worker::BatchSource>(std::move(source));
}

StatusOr<std::unique_ptr<worker::DenseOptimizer>> MakeDenseOptimizer(const LoadedConfig& c,
                                                                      size_t dense_size) {
  const config::OptimizerConfig& o = c.job.train().dense_optimizer();
  worker::DenseOptimizerOptions d;
  switch (o.type()) {
    case config::OptimizerConfig::ADAM: d.type = worker::DenseOptimizerOptions::Type::kAdam; break;
    case config::OptimizerConfig::ADAGRAD:
      d.type = worker::DenseOptimizerOptions::Type::kAdagrad;
      break;
    case config::OptimizerConfig::SGD: d.type = worker::DenseOptimizerOptions::Type::kSgd; break;
    case config::OptimizerConfig::FTRL:
      return Status::InvalidArgument(c.Where("train.dense_optimizer.type") +
                                     ": FTRL is for embedding rows only");
  }
  d.learning_rate = o.learning_rate();
  d.l2 = o.l2();
  d.adam_beta1 = o.adam_beta1();
  d.adam_beta2 = o.adam_beta2();
  d.adam_eps = o.adam_eps();
  d.adagrad_initial_accumulator = o.adagrad_initial_acc();
  auto opt = worker::NewDenseOptimizer(d, dense_size);
  if (!opt.ok()) return opt.status().WithContext(c.Where("train.dense_optimizer"));
  return opt;
}

}  // namespace ctrps::launch
