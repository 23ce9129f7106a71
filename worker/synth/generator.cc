#include "worker/synth/generator.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "common/progress.h"
#include "worker/eval/eval_accumulator.h"
#include "worker/synth/meta_json.h"
#include "worker/synth/planted_model.h"
#include "worker/synth/row_codec.h"

namespace ctrps::worker::synth {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSplitSalt = 0x5b117;
constexpr uint64_t kIdSalt = 0x1d5;
constexpr uint64_t kAucSampleSalt = 0xa0c;

// What one split is: its rows and, for Avazu, the hours it spans.
struct SplitPlan {
  std::string name;
  int index = 0;
  int64_t rows = 0;
  int64_t first_hour = 0, hours = 0;  // Avazu time range
  uint64_t stream_key = 0;            // seeds the split's chunk streams
  double auc_keep_prob = 1;           // share of rows kept for the Bayes AUC
};

struct Chunk {
  std::string data, truth;
  std::vector<float> truth_values, labels;
  std::vector<ScoredExample> auc_sample;
};

void AppendProbability(int64_t q, std::string* out) {  // q / 1e9 with 9 decimals
  char buf[12];
  buf[0] = static_cast<char>('0' + q / 1000000000);
  buf[1] = '.';
  for (int i = 10; i >= 2; --i, q /= 10) buf[i] = static_cast<char>('0' + q % 10);
  buf[11] = '\n';
  out->append(buf, sizeof(buf));
}

void GenerateChunk(const PlantedModel& model, const SplitPlan& plan, int64_t chunk, Chunk* out) {
  const int64_t begin = chunk * kRowsPerChunk;
  const int64_t end = std::min(plan.rows, begin + kRowsPerChunk);
  const bool avazu = model.format() == DataFormat::kAvazu;
  Rng rng(HashPair(plan.stream_key, chunk));
  SynthRow row;
  out->data.reserve((end - begin) * (avazu ? 160 : 200));
  out->truth.reserve((end - begin) * 12);
  for (int64_t r = begin; r < end; ++r) {
    model.SampleRow(rng, &row);
    int64_t hour_code = 0;
    if (avazu) {
      const int64_t hour = plan.first_hour + static_cast<int64_t>(
          static_cast<unsigned __int128>(r) * plan.hours / plan.rows);
      row.hour_of_day = static_cast<int>(hour % 24);
      hour_code = AvazuHourCode(hour);
    }
    const double p = model.Probability(row);
    const int label = rng.Uniform() < p ? 1 : 0;
    // The truth as written (9 decimals), so these statistics match a reader's.
    const int64_t q = std::llround(p * 1e9);
    AppendProbability(q, &out->truth);
    const float written = static_cast<float>(static_cast<double>(q) / 1e9);
    out->truth_values.push_back(written);
    out->labels.push_back(static_cast<float>(label));
    if (plan.auc_keep_prob >= 1 ||
        UnitFromHash(HashPair(plan.stream_key ^ kAucSampleSalt, r)) < plan.auc_keep_prob) {
      out->auc_sample.push_back({written, static_cast<float>(label)});
    }
    AppendRow(model, row, label, HashPair(plan.stream_key ^ kIdSalt, r), hour_code, &out->data);
  }
}

Status WriteAll(std::FILE* f, const std::string& bytes, const std::string& path) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    return Status::IOError("write " + path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

// An output file written under a temporary name and renamed by Commit.
class OutFile {
 public:
  Status Open(const std::string& path) {
    path_ = path;
    tmp_ = path + ".tmp";
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) return Status::IOError("open " + tmp_ + ": " + std::strerror(errno));
    return Status::OK();
  }
  Status Write(const std::string& bytes) {
    bytes_ += bytes.size();
    return WriteAll(file_, bytes, tmp_);
  }
  Status Commit() {
    std::FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0) return Status::IOError("close " + tmp_ + ": " + std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) return Status::IOError("rename " + tmp_ + " to " + path_ + ": " + ec.message());
    return Status::OK();
  }
  ~OutFile() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }
  int64_t bytes() const { return bytes_; }

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  int64_t bytes_ = 0;
};

// Generates chunks on `threads` threads and writes them in order from the
// calling thread; at most `window` chunks are in memory at once. progress
// may be null.
Status RunSplit(const PlantedModel& model, const SplitPlan& plan, const std::string& out_dir,
                int threads, Progress* progress, SplitReport* report) {
  OutFile data, truth;
  RETURN_IF_ERROR(data.Open(out_dir + "/" + report->data_file));
  RETURN_IF_ERROR(truth.Open(out_dir + "/" + report->truth_file));
  const std::string header = DataHeader(model.format());
  if (!header.empty()) {
    RETURN_IF_ERROR(data.Write(header));
    RETURN_IF_ERROR(truth.Write("click_prob\n"));
  }
  const int64_t num_chunks = (plan.rows + kRowsPerChunk - 1) / kRowsPerChunk;
  const int64_t window = 2 * threads + 2;
  std::mutex mu;
  std::condition_variable produced, consumed;
  std::vector<std::unique_ptr<Chunk>> slots(window);
  int64_t next_chunk = 0, written = 0;
  bool abort = false;
  auto worker = [&] {
    while (true) {
      int64_t c;
      {
        std::unique_lock<std::mutex> lock(mu);
        consumed.wait(lock, [&] { return abort || next_chunk >= num_chunks || next_chunk < written + window; });
        if (abort || next_chunk >= num_chunks) return;
        c = next_chunk++;
      }
      auto chunk = std::make_unique<Chunk>();
      GenerateChunk(model, plan, c, chunk.get());
      {
        std::lock_guard<std::mutex> lock(mu);
        slots[c % window] = std::move(chunk);
      }
      produced.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);

  EvalAccumulator sums(/*keep_pairs=*/false);
  std::vector<ScoredExample> auc_sample;
  Status status;
  for (int64_t c = 0; c < num_chunks && status.ok(); ++c) {
    std::unique_ptr<Chunk> chunk;
    {
      std::unique_lock<std::mutex> lock(mu);
      produced.wait(lock, [&] { return slots[c % window] != nullptr; });
      chunk = std::move(slots[c % window]);
    }
    status = data.Write(chunk->data);
    if (status.ok()) status = truth.Write(chunk->truth);
    if (status.ok()) status = sums.Add(chunk->truth_values, chunk->labels);
    auc_sample.insert(auc_sample.end(), chunk->auc_sample.begin(), chunk->auc_sample.end());
    if (progress != nullptr) progress->Add(static_cast<int64_t>(chunk->labels.size()));
    {
      std::lock_guard<std::mutex> lock(mu);
      written = c + 1;
      abort = !status.ok();
    }
    consumed.notify_all();
  }
  for (std::thread& t : pool) t.join();
  RETURN_IF_ERROR_CTX(status, "split " + plan.name);
  RETURN_IF_ERROR(data.Commit());
  RETURN_IF_ERROR(truth.Commit());

  EvalMetrics m = sums.Compute();
  report->rows = plan.rows;
  report->data_bytes = data.bytes();
  report->truth_bytes = truth.bytes();
  report->clicks = m.positives;
  report->mean_truth = m.mean_prediction;
  report->bayes_logloss = m.logloss;
  report->bayes_normalized_entropy = m.normalized_entropy;
  report->bayes_auc_rows = static_cast<int64_t>(auc_sample.size());
  report->bayes_auc = AucInPlace(&auc_sample);
  return Status::OK();
}

}  // namespace

int64_t SynthReport::total_bytes() const {
  int64_t n = 0;
  for (const SplitReport& s : splits) n += s.data_bytes + s.truth_bytes;
  return n;
}

int64_t SynthReport::total_rows() const {
  int64_t n = 0;
  for (const SplitReport& s : splits) n += s.rows;
  return n;
}

std::string DataFileName(DataFormat format, const std::string& split) {
  return split + (format == DataFormat::kCriteo ? ".txt" : ".csv");
}

std::string TruthFileName(const std::string& data_file) { return data_file + ".truth"; }

StatusOr<SynthReport> GenerateDataset(const SynthOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) return Status::IOError("create " + options.out_dir + ": " + ec.message());
  // No meta.json until every file is complete again.
  const std::string meta_path = options.out_dir + "/" + kMetaFileName;
  fs::remove(meta_path, ec);
  if (ec) return Status::IOError("remove " + meta_path + ": " + ec.message());

  const PlantedModel model = PlantedModel::Create(options);
  SynthReport report;
  report.out_dir = options.out_dir;
  report.model_bias = model.bias();
  report.model_logit_std = model.logit_std();
  report.oracle = model.oracle_aucs();
  const int64_t eval_rows = options.ResolvedEvalRows();
  std::vector<SplitPlan> plans = {{"train", 0, options.train_rows, 0, 240}};
  if (eval_rows > 0) {
    // Avazu: ten days of training, then one day each for valid and test.
    plans.push_back({"valid", 1, eval_rows, 240, 24});
    plans.push_back({"test", 2, eval_rows, 264, 24});
  }
  const uint64_t seed_key = HashPair(options.seed, kSplitSalt);
  for (SplitPlan& plan : plans) {
    plan.stream_key = HashPair(seed_key, plan.index);
    plan.auc_keep_prob = static_cast<double>(kMaxExactAucRows) / plan.rows;
    const auto split_start = std::chrono::steady_clock::now();
    SplitReport split;
    split.name = plan.name;
    split.data_file = DataFileName(options.format, plan.name);
    split.truth_file = TruthFileName(split.data_file);
    std::optional<Progress> progress;
    if (options.show_progress) progress.emplace("gen-data " + plan.name, plan.rows, "rows");
    RETURN_IF_ERROR(RunSplit(model, plan, options.out_dir, options.threads,
                             progress ? &*progress : nullptr, &split));
    if (progress) progress->Finish();
    split.seconds = seconds_since(split_start);
    report.splits.push_back(split);
  }
  report.seconds = seconds_since(start);

  const std::string tmp = meta_path + ".tmp";
  {
    std::ofstream meta(tmp, std::ios::trunc);
    meta << BuildMetaJson(options, model, report);
    if (!meta.flush()) return Status::IOError("write " + tmp);
  }
  fs::rename(tmp, meta_path, ec);
  if (ec) return Status::IOError("rename " + tmp + " to " + meta_path + ": " + ec.message());
  return report;
}

StatusOr<bool> DatasetIsUpToDate(const SynthOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const std::string meta_path = options.out_dir + "/" + kMetaFileName;
  std::ifstream in(meta_path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(MetaSummary meta, ParseMetaSummary(text.str()));
  if (meta.options_key != SynthFingerprint(options)) return false;
  const int64_t splits = options.ResolvedEvalRows() > 0 ? 3 : 1;
  if (static_cast<int64_t>(meta.file_bytes.size()) != 2 * splits) return false;
  for (const auto& [name, bytes] : meta.file_bytes) {
    std::error_code ec;
    const auto size = fs::file_size(options.out_dir + "/" + name, ec);
    if (ec || static_cast<int64_t>(size) != bytes) return false;
  }
  return true;
}

}  // namespace ctrps::worker::synth
