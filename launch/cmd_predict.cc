// ctrps predict --model BUNDLE --data FILE [--out FILE] [--batch-size N] [--single-row]
//               [--labels auto|yes|no] [--skip-bad]
#include <spdlog/spdlog.h>

#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/logging.h"
#include "common/progress.h"
#include "launch/commands.h"
#include "launch/job_setup.h"
#include "launch/saved_model.h"
#include "worker/data/byte_source.h"
#include "worker/data/data_reader.h"
#include "worker/data/input_files.h"
#include "worker/data/line_reader.h"
#include "worker/eval/auc.h"
#include "worker/nn/threading.h"
#include "worker/serve/engine.h"
#include "worker/serve/exporter.h"

namespace ctrps::launch {
namespace {

const std::vector<FlagSpec> kPredictFlags = {
    {"model", "BUNDLE", "a serving bundle written by `ctrps export` (a model saved by `ctrps "
                        "train` or a checkpoint is exported to a temporary bundle first)"},
    {"data", "FILE",
     "raw data lines in the model's training format (file, list or glob), with or "
     "without the label column (see --labels); labels are only used for the summary"},
    {"labels", "auto|yes|no",
     "whether the lines carry labels (default auto: judged from the first lines, by "
     "majority, e.g. Criteo's 39-column test.txt, or from Avazu's header: test.csv has no "
     "`click` = no)"},
    {"out", "FILE",
     "write one click probability per row to FILE (default: stdout); written to FILE.tmp "
     "and renamed when complete, so a failed run leaves no FILE"},
    {"skip-bad", "",
     "skip malformed and empty lines (counted and summarised) instead of stopping at the "
     "first one with file:line: then output lines no longer line up with input lines"},
    {"batch-size", "N", "rows scored per batch (default 1024)"},
    {"single-row", "", "score one row at a time (the low-latency path) instead of in batches"},
    {"threads", "N", "compute threads (default 1)"},
};

// Whether the data carries labels, judged from the first input file (gzip
// or plain): Avazu from its header; Criteo and libffm by majority over
// their first kJudgedLines non-empty lines, so one odd first line does not
// decide for the whole input.
constexpr int kJudgedLines = 100;
StatusOr<bool> JudgeLabeled(const std::string& spec, worker::DataFormat format, int* judged) {
  ASSIGN_OR_RETURN(auto files, worker::ResolveInputFiles(spec));
  const worker::InputFile& f = files.front();
  std::unique_ptr<worker::ByteSource> source;
  if (f.gzip) {
    ASSIGN_OR_RETURN(source, worker::OpenGzipSource(f.path));
  } else {
    ASSIGN_OR_RETURN(source, worker::OpenFileSource(f.path));
  }
  worker::LineReaderOptions lo;
  lo.read_buffer_bytes = 64 << 10;
  worker::LineReader reader(std::move(source), 0, lo);
  worker::Line line;
  int labeled = 0, n = 0;
  while (n < kJudgedLines) {
    ASSIGN_OR_RETURN(bool got, reader.Next(&line));
    if (!got) break;
    if (line.text.empty() && format != worker::DataFormat::kAvazu) continue;
    labeled += worker::LooksLabeled(format, line.text);
    ++n;
    if (format == worker::DataFormat::kAvazu) break;  // the header decides
  }
  *judged = n;
  return n == 0 || 2 * labeled >= n;
}

// A bundle exported for this run only, removed when it ends.
struct TempBundle {
  std::string dir;
  ~TempBundle() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

// `predict --model` on a saved model or a checkpoint (what `eval --model`
// takes): exported to a temporary bundle first, saying so. Anything else is
// NotFound, saying what a bundle is and how to make one.
StatusOr<std::string> ExportTemporaryBundle(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_saved = fs::exists(model + "/MANIFEST", ec) || fs::exists(model + "/MANIFEST.pb", ec);
  if (!is_saved)
    return Status::NotFound("--model " + model +
                            ": not a serving bundle (no model.pb), nor a model saved by `ctrps "
                            "train` or a checkpoint: `ctrps export --checkpoint MODEL --out "
                            "BUNDLE` makes a bundle");
  ASSIGN_OR_RETURN(LoadedConfig c, LoadConfig(model + "/config.pbtxt", {}));
  RETURN_IF_ERROR_CTX(ValidateConfig(c, "eval"), model + "/config.pbtxt");
  ASSIGN_OR_RETURN(SavedModel saved, LoadExportSource(c, model));
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/ctrps-predict-XXXXXX";
  if (!::mkdtemp(pattern.data()))
    return Status::IOError("cannot create a temporary directory like " + pattern);
  spdlog::info("{} is a saved model, not a serving bundle: exporting it to {} for this run "
               "(`ctrps export --checkpoint {} --out BUNDLE` once saves this step next time)",
               model, pattern, model);
  worker::serve::ExportOptions o;
  o.out_dir = pattern;
  o.source = model;
  o.unknown_keys = saved.init_rows;  // as `ctrps export` and `ctrps eval` read them
  o.extra_files.emplace_back("config.pbtxt", ConfigToText(c.job));
  Status s = worker::serve::ExportBundle(saved.model.get(), saved.client.get(), saved.data, o);
  if (!s.ok()) {
    fs::remove_all(pattern, ec);
    return s.WithContext("exporting " + model + " to a temporary bundle");
  }
  return pattern;
}

// The part of the input scored so far, for the progress bar: rows times the
// mean line size over the files' sizes (-1, unknown, for gzip input).
double ScoredFraction(const worker::DataReader& reader, size_t rows) {
  const worker::ReadStats st = reader.stats();
  uint64_t total = 0;
  for (const auto& f : reader.files()) {
    if (f.gzip) return -1;
    total += f.size_bytes;
  }
  if (st.lines == 0 || total == 0) return -1;
  return std::min(1.0, rows * (static_cast<double>(st.bytes) / st.lines) / total);
}

Status Predict(const Flags& flags) {
  ASSIGN_OR_RETURN(int64_t batch_size, flags.GetInt("batch-size", 1024));
  ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", 1));
  if (batch_size < 1 || batch_size > (1 << 20))
    return Status::InvalidArgument("--batch-size " + std::to_string(batch_size) +
                                   ": expected 1..1048576");
  if (threads < 1 || threads > 1024)
    return Status::InvalidArgument("--threads " + std::to_string(threads) + ": expected 1..1024");
  worker::SetNumThreads(static_cast<int>(threads));
  std::string bundle = flags.Get("model");
  TempBundle temp;
  if (!worker::serve::IsBundleDir(bundle)) {
    ASSIGN_OR_RETURN(temp.dir, ExportTemporaryBundle(bundle));
    bundle = temp.dir;
  }
  ASSIGN_OR_RETURN(auto engine, worker::serve::InferenceEngine::Open(bundle));

  worker::DataReaderOptions o;
  o.input = flags.Get("data");
  o.parser = engine->data().parser;
  const std::string labels = flags.Has("labels") ? flags.Get("labels") : "auto";
  if (labels == "auto") {
    int judged = 0;
    ASSIGN_OR_RETURN(o.parser.labeled, JudgeLabeled(o.input, o.parser.format, &judged));
    if (!o.parser.labeled)
      spdlog::info("{}: no label column (judged from its first {}); scoring only", o.input,
                   judged == 1 ? std::string("line") : std::to_string(judged) + " lines");
  } else if (labels == "yes" || labels == "no") {
    o.parser.labeled = labels == "yes";
  } else {
    return Status::InvalidArgument("--labels " + labels + ": expected auto, yes or no");
  }
  o.batching.batch_size_rows = static_cast<int>(batch_size);
  o.batching.num_epochs = 1;
  o.batching.shuffle_buffer_rows = 0;
  // Each output line must belong to its input line: stop at the first
  // malformed one unless told to skip.
  o.malformed.strict = !flags.Has("skip-bad");
  o.malformed.empty_lines_fatal = true;  // an empty line has no score either
  RETURN_IF_ERROR_CTX(o.Validate(), "data options");
  ASSIGN_OR_RETURN(auto reader, worker::DataReader::Open(o));

  std::ofstream file;
  const bool to_file = flags.Has("out");
  const std::string out_path = to_file ? flags.Get("out") : "";
  const std::string tmp_path = out_path + ".tmp";
  if (to_file) {
    file.open(tmp_path, std::ios::trunc);
    if (!file) return Status::IOError("cannot create " + tmp_path);
  }
  // Whatever fails below leaves no partial output under the real name.
  struct RemoveTmp {
    const std::string* path;
    bool keep = false;
    ~RemoveTmp() {
      if (!keep && !path->empty()) std::remove(path->c_str());
    }
  } remove_tmp{to_file ? &tmp_path : &out_path};
  std::ostream& out = to_file ? static_cast<std::ostream&>(file) : std::cout;
  const bool single = flags.Has("single-row");
  const int F = engine->num_fields();
  worker::Batch batch;
  std::vector<float> probs, all_probs, all_labels;
  double compute_s = 0;
  char buf[32];
  Progress progress("predict", -1, "rows");
  while (true) {
    auto more = reader->Next(&batch);
    if (!more.ok())
      return more.status().WithContext(flags.Has("skip-bad") ? "reading" : "reading (--skip-bad skips malformed lines)");
    if (!*more) {
      progress.SetFraction(1.0);
      break;
    }
    const int B = batch.size();
    probs.resize(B);
    const auto t0 = std::chrono::steady_clock::now();
    if (single) {
      for (int b = 0; b < B; ++b)
        probs[b] = engine->PredictRow(batch.keys.data() + static_cast<size_t>(b) * F,
                                      batch.values.data() + static_cast<size_t>(b) * F);
    } else {
      engine->PredictBatch(batch, probs.data());
    }
    compute_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int b = 0; b < B; ++b) {
      const int n = std::snprintf(buf, sizeof buf, "%.9g\n", probs[b]);
      out.write(buf, n);
    }
    all_probs.insert(all_probs.end(), probs.begin(), probs.end());
    all_labels.insert(all_labels.end(), batch.labels.begin(), batch.labels.end());
    progress.SetFraction(ScoredFraction(*reader, all_probs.size()));
    progress.Add(B);
  }
  progress.Finish();
  out.flush();
  if (!out) return Status::IOError("cannot write the predictions");
  const std::string skipped =
      reader->stats().malformed_lines() > 0 ? reader->stats().ToString() : "";
  if (!skipped.empty())
    spdlog::warn("{}: {}; these lines have no output line, so output lines do not line up with "
                 "input lines", o.input, skipped);
  const size_t n = all_probs.size();
  if (n == 0) return Status::InvalidArgument(o.input + " has no valid rows");
  if (to_file) {
    file.close();
    if (!file || std::rename(tmp_path.c_str(), out_path.c_str()) != 0)
      return Status::IOError("cannot write " + out_path);
    remove_tmp.keep = true;
  }
  std::string quality = "no labels";
  if (o.parser.labeled) {
    ASSIGN_OR_RETURN(double auc, worker::ComputeAuc(all_probs, all_labels));
    ASSIGN_OR_RETURN(double logloss, worker::ComputeLogloss(all_probs, all_labels));
    char text[64];
    std::snprintf(text, sizeof text, "AUC %.5f, logloss %.5f", auc, logloss);
    quality = text;
  }
  std::fprintf(stderr, "ctrps predict: %zu rows, %s, %.3f us/row (%s), %s, unknown keys %.2f%%\n",
               n, worker::ModelTypeName(engine->manifest().model.type), 1e6 * compute_s / n,
               single ? "single-row" : "batched", quality.c_str(),
               100.0 * engine->unknown_keys() / (static_cast<double>(n) * F));
  return Status::OK();
}

}  // namespace

int RunPredict(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, kPredictFlags);
  if (!flags.ok() || flags->help() || !flags->Has("model") || !flags->Has("data")) {
    if (!flags.ok())
      std::fprintf(stderr, "ctrps predict: %s\n\n", flags.status().message().c_str());
    else if (!flags->help())
      std::fprintf(stderr, "ctrps predict: --model and --data are required\n\n");
    std::fputs(FlagsUsage("predict", "Scores raw data lines with an exported serving bundle.",
                          kPredictFlags)
                   .c_str(),
               flags.ok() && flags->help() ? stdout : stderr);
    return flags.ok() && flags->help() ? 0 : 2;
  }
  InitLogging("info");
  Status s = Predict(*flags);
  if (!s.ok()) {
    spdlog::error("predict failed: {}", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace ctrps::launch
