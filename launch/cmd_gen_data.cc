#include "launch/cmd_gen_data.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "common/progress.h"
#include "common/status.h"
#include "launch/flags.h"
#include "worker/synth/generator.h"
#include "worker/synth/truth.h"

namespace ctrps::launch {
namespace {

using worker::synth::SynthOptions;

// "1000000", "1M", "250k", "2G" (decimal multipliers).
StatusOr<int64_t> ParseCount(const std::string& flag, const std::string& text) {
  std::string digits = text;
  int64_t mult = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k': case 'K': mult = 1000; break;
      case 'm': case 'M': mult = 1000000; break;
      case 'g': case 'G': mult = 1000000000; break;
      default: break;
    }
    if (mult != 1) digits.pop_back();
  }
  char* end = nullptr;
  errno = 0;
  const long long v = digits.empty() || digits[0] == '-' ? -1 : std::strtoll(digits.c_str(), &end, 10);
  if (v < 0 || errno != 0 || end != digits.c_str() + digits.size() || v > INT64_MAX / mult) {
    return Status::InvalidArgument(flag + ": '" + text +
                                   "' is not a non-negative integer (suffixes k, M, G allowed)");
  }
  return static_cast<int64_t>(v) * mult;
}

StatusOr<double> ParseDouble(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || end != text.c_str() + text.size()) {
    return Status::InvalidArgument(flag + ": '" + text + "' is not a number");
  }
  return v;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty() || text == "none") return out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

const std::vector<FlagSpec> kGenDataFlags = {
    {"format", "F", "criteo or avazu (required)"},
    {"rows", "N", "training rows (required); suffixes k, M, G allowed"},
    {"out", "DIR", "output directory, created if absent (required)"},
    {"eval-rows", "M", "rows of valid and of test each (default N/10; 0: none)"},
    {"seed", "S", "random seed (default 1)"},
    {"noise-fields", "A,B", "fields the click model ignores, or none (default criteo "
                            "I6,C8,C15,C21; avazu C18,app_domain,device_model,device_ip)"},
    {"vocab-scale", "X", "scales vocabularies over 1000 values (default 1: real sizes, "
                         "~34M Criteo keys; 0.001: thousands; at most 100)"},
    {"zipf", "S", "value frequency exponent, rank^-S (default 1.1)"},
    {"missing-rate", "R", "mean share of empty feature columns (default criteo 0.14, spread "
                          "like real Criteo; avazu 0)"},
    {"target-ctr", "P", "mean click probability (default 0.22)"},
    {"threads", "T", "generator threads (default 2); the output never depends on it"},
    {"force", "", "regenerate even if DIR already holds this dataset"},
    {"quiet", "", "no progress output"},
};

struct GenDataArgs {
  SynthOptions options;
  bool force = false;
  bool help = false;
};

StatusOr<GenDataArgs> ParseArgs(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, kGenDataFlags));
  GenDataArgs out;
  out.help = flags.help();
  if (out.help) return out;
  for (const char* required : {"format", "rows", "out"}) {
    if (!flags.Has(required)) return Status::InvalidArgument(std::string("missing --") + required);
  }
  SynthOptions& o = out.options;
  ASSIGN_OR_RETURN(o.format, worker::synth::ParseFormat(flags.Get("format")));
  ASSIGN_OR_RETURN(o.train_rows, ParseCount("--rows", flags.Get("rows")));
  o.out_dir = flags.Get("out");
  if (flags.Has("eval-rows")) {
    ASSIGN_OR_RETURN(o.eval_rows, ParseCount("--eval-rows", flags.Get("eval-rows")));
  }
  if (flags.Has("seed")) {
    ASSIGN_OR_RETURN(int64_t seed, ParseCount("--seed", flags.Get("seed")));
    o.seed = static_cast<uint64_t>(seed);
  }
  if (flags.Has("noise-fields")) o.noise_fields = SplitList(flags.Get("noise-fields"));
  if (flags.Has("vocab-scale")) {
    ASSIGN_OR_RETURN(o.vocab_scale, ParseDouble("--vocab-scale", flags.Get("vocab-scale")));
  }
  if (flags.Has("zipf")) {
    ASSIGN_OR_RETURN(o.zipf_exponent, ParseDouble("--zipf", flags.Get("zipf")));
  }
  if (flags.Has("missing-rate")) {
    ASSIGN_OR_RETURN(o.missing_rate, ParseDouble("--missing-rate", flags.Get("missing-rate")));
  }
  if (flags.Has("target-ctr")) {
    ASSIGN_OR_RETURN(o.model.target_ctr, ParseDouble("--target-ctr", flags.Get("target-ctr")));
  }
  if (flags.Has("threads")) {
    ASSIGN_OR_RETURN(int64_t threads, ParseCount("--threads", flags.Get("threads")));
    o.threads = static_cast<int>(std::min<int64_t>(threads, 1 << 20));  // Validate bounds it
  }
  o.show_progress = !flags.Has("quiet");
  out.force = flags.Has("force");
  RETURN_IF_ERROR(o.Validate());
  return out;
}

std::string Bytes(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof(buf), "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  return buf;
}

void PrintSummary(const SynthOptions& o, const worker::synth::SynthReport& r) {
  std::printf("gen-data: wrote %s rows of %s data to %s in %s (%s rows/s, %s/s)\n",
              HumanCount(r.total_rows()).c_str(), worker::synth::FormatName(o.format),
              r.out_dir.c_str(), HumanDuration(r.seconds).c_str(),
              HumanCount(r.total_rows() / r.seconds).c_str(), Bytes(r.total_bytes() / r.seconds).c_str());
  std::printf("  %-6s %10s %10s %9s %8s %9s %10s %10s\n", "split", "rows", "size", "clicks", "CTR",
              "mean p", "Bayes AUC", "Bayes LL");
  for (const auto& s : r.splits) {
    std::printf("  %-6s %10lld %10s %9lld %8.4f %9.4f %10.4f %10.4f\n", s.name.c_str(),
                static_cast<long long>(s.rows), Bytes(s.data_bytes).c_str(),
                static_cast<long long>(s.clicks), static_cast<double>(s.clicks) / s.rows,
                s.mean_truth, s.bayes_auc, s.bayes_logloss);
  }
  std::printf("  planted model: bias %.3f, logit std %.3f; oracle AUC of its additive terms %.4f, "
              "+ field pairs %.4f, all terms %.4f\n  details in %s/meta.json\n",
              r.model_bias, r.model_logit_std, r.oracle.additive, r.oracle.with_interactions,
              r.oracle.full, r.out_dir.c_str());
}

}  // namespace

std::string GenDataUsage() {
  return FlagsUsage(
      "gen-data", "Writes a synthetic CTR dataset in the exact Criteo or Avazu layout with a planted\n"
      "click model: DIR/train, valid, test (.txt for Criteo, .csv for Avazu), a .truth file\n"
      "beside each with every line's true click probability, and DIR/meta.json describing\n"
      "the model and each split's Bayes-optimal AUC and logloss. The same flags give\n"
      "byte-identical files whatever --threads; re-running into a DIR whose meta.json\n"
      "matches skips the work. Score a model against the truth with\n"
      "ctrps eval --truth DIR/test.txt.truth.",
      kGenDataFlags);
}

int RunGenData(const std::vector<std::string>& args) {
  StatusOr<GenDataArgs> parsed = ParseArgs(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "gen-data: %s\nRun 'ctrps gen-data --help' for usage.\n",
                 parsed.status().message().c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(GenDataUsage().c_str(), stdout);
    return 0;
  }
  const SynthOptions& options = parsed->options;
  if (!parsed->force) {
    StatusOr<bool> up_to_date = worker::synth::DatasetIsUpToDate(options);
    if (up_to_date.ok() && *up_to_date) {
      std::printf("gen-data: %s already holds this dataset (meta.json matches); skipped. "
                  "Use --force to regenerate.\n", options.out_dir.c_str());
      return 0;
    }
  }
  StatusOr<worker::synth::SynthReport> report = worker::synth::GenerateDataset(options);
  if (!report.ok()) {
    std::fprintf(stderr, "gen-data: %s\n", report.status().ToString().c_str());
    return 1;
  }
  PrintSummary(options, *report);
  return 0;
}

int RunTruthReport(const std::string& truth_path, const std::string& data_path) {
  std::string data = data_path;
  if (data.empty()) {
    StatusOr<std::string> derived = worker::synth::DataPathForTruth(truth_path);
    if (!derived.ok()) {
      std::fprintf(stderr, "eval: %s\n", derived.status().message().c_str());
      return 1;
    }
    data = *derived;
  }
  StatusOr<worker::EvalMetrics> m = worker::synth::EvaluateTruth(truth_path, data);
  if (!m.ok()) {
    std::fprintf(stderr, "eval: %s\n", m.status().ToString().c_str());
    return 1;
  }
  std::printf("Bayes-optimal metrics of %s (truth %s):\n", data.c_str(), truth_path.c_str());
  std::printf("  rows %lld  clicks %lld  CTR %.4f  mean truth %.4f  calibration %.4f\n",
              static_cast<long long>(m->count), static_cast<long long>(m->positives),
              m->observed_ctr, m->mean_prediction, m->calibration_ratio);
  std::printf("  AUC %.5f  logloss %.5f  normalized entropy %.4f\n", m->auc, m->logloss,
              m->normalized_entropy);
  return 0;
}

}  // namespace ctrps::launch
